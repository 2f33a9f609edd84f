"""Small readers for settings taken from environment variables."""
import os


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def install_secret(path, nbytes: int = 48) -> str:
    """A random secret kept in a file of this install (mode 600), made on first use: development only. Written
    beside and then linked into place, so processes starting together all read the same complete secret."""
    import secrets
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(nbytes))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process was first: its secret is the one
        finally:
            temporary.unlink()
    return path.read_text().strip()
