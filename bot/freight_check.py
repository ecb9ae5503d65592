"""Whether freight from history can still be deployed: every image's tag is still in its registry, at
the digest the freight recorded. Freight ids live on in the ledger after a registry deletes or moves a
tag; ``/promote <freight-id>`` and ``/rollback`` check before opening a pull request that Argo CD could
never deploy (a registry adapter, used by ``bot.command_runner``)."""

from __future__ import annotations

from bot.core.freight import Freight
from bot.errors import RegistryError
from bot.registry import RegistryClient

GONE = (
    "freight `{id}` ({label}) can no longer be deployed: {why}; the freight ledger still names it, but "
    "the registry does not have it any more"
)
MOVED = "`{image}:{tag}` now points to {now}, not {was} as when it was verified"


async def undeployable(registry: RegistryClient, freight: Freight) -> str | None:
    """Why ``freight`` can no longer be deployed (a tag gone, or moved to another digest), or None.

    Errors: a temporary ``RegistryError`` (the registry unreachable, 5xx, rate limited) is raised, so
    the command is answered once the registry answers."""
    for image in freight.images:
        try:
            digest = await registry.digest(image.image, image.tag)
        except RegistryError as exc:
            if exc.temporary:
                raise
            return GONE.format(id=freight.id, label=freight.label, why=str(exc))
        if image.digest and digest != image.digest:
            why = MOVED.format(image=image.image, tag=image.tag, now=digest[:19], was=image.digest[:19])
            return GONE.format(id=freight.id, label=freight.label, why=why)
    return None
