"""The world's lookups: by GUID or domain, case-insensitively, and current after the world changes."""
from emulator import world as demo
from emulator.world import World


def test_tenant_lookup_by_guid_or_domain_follows_changes():
    world = World(demo.demo_world())
    fabrikam = world.tenant(demo.FABRIKAM)
    assert fabrikam is not None and world.tenant(demo.FABRIKAM.upper()) is fabrikam
    domain = fabrikam["domains"][0]
    assert world.tenant(domain.upper()) is fabrikam and world.tenant("nobody.example") is None
    world.data["tenants"].append({"id": "b0000000-0000-4000-8000-0000000000aa", "domains": ["Late.Example"],
                                  "display_name": "Late", "cloud": "global", "region": "EU"})
    assert world.tenant("late.example")["display_name"] == "Late"
    world.reset()
    assert world.tenant("late.example") is None and world.tenant(domain)["id"] == demo.FABRIKAM
