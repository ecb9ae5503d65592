from __future__ import annotations

import pytest

from bot.core.freight import Freight, FreightImage
from bot.core.images import normalise_name, parse_image, same_image
from bot.errors import InvalidReferenceError


@pytest.mark.parametrize(
    "written",
    ["nginx", "docker.io/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx", "nginx:1.25"],
)
def test_docker_hub_spellings_are_one_image(written: str) -> None:
    assert normalise_name(written) == "docker.io/library/nginx"


def test_registry_with_port_and_nested_path_is_kept() -> None:
    ref = parse_image("localhost:5000/acme/team/web:1.2.3@sha256:" + "a" * 64)
    assert (ref.registry, ref.repository, ref.tag) == ("localhost:5000", "acme/team/web", "1.2.3")
    assert ref.digest == "sha256:" + "a" * 64


def test_user_namespace_on_docker_hub_gets_no_library_prefix() -> None:
    assert normalise_name("bitnami/redis") == "docker.io/bitnami/redis"
    assert parse_image("bitnami/redis").familiar == "bitnami/redis"


def test_ghcr_and_hub_images_differ() -> None:
    assert not same_image("ghcr.io/acme/web", "acme/web")


@pytest.mark.parametrize(
    ("bad", "says"),
    [("Nginx/Web", "path component"), ("web:-bad", "tag"), ("web@sha256:xyz", "digest"), ("", "empty")],
)
def test_malformed_references_say_which_part_is_wrong(bad: str, says: str) -> None:
    with pytest.raises(InvalidReferenceError, match=says):
        parse_image(bad)


def test_warehouse_reference_with_tag_is_refused_when_tags_are_not_allowed() -> None:
    with pytest.raises(InvalidReferenceError, match="carries a tag"):
        parse_image("ghcr.io/acme/web:1.0.0", allow_tag=False)


def test_freight_id_depends_on_content_not_order() -> None:
    a = FreightImage("ghcr.io/acme/web", "1.4.2", "sha256:" + "1" * 64)
    b = FreightImage("nginx", "1.25.3", None)
    first = Freight("web", (a, b))
    second = Freight("web", (b, FreightImage("docker.io/library/nginx", "1.25.3")))
    assert first.id == Freight("web", (b, a)).id
    assert first.id != second.id  # second lacks web
    assert len(first.id) == 12 and int(first.id, 16) >= 0


def test_freight_id_changes_with_the_digest() -> None:
    tag_only = Freight("web", (FreightImage("ghcr.io/acme/web", "1.4.2"),))
    pinned = Freight("web", (FreightImage("ghcr.io/acme/web", "1.4.2", "sha256:" + "2" * 64),))
    assert tag_only.id != pinned.id
    assert pinned.label == "web 1.4.2"
