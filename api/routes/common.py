"""What every route module shares: the page size bound and the keyset page of a list."""


from api import selectors
from api.problems import Problem

MAX_LIMIT = 500


def bounded_limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


def keyset_page(queryset, *, field: str, descending: bool, cursor: str | None, limit: int, shape):
    try:
        rows, next_cursor = selectors.page_after(queryset, field=field, descending=descending, cursor=cursor,
                                                 limit=bounded_limit(limit))
    except ValueError as exc:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "Use the next_cursor of a previous page.") from exc
    return {"items": [shape(row) for row in rows], "next_cursor": next_cursor}
