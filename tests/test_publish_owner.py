"""Publishing into someone else's analysis, and altered models files (issue 14, a fresh-eyes
tester's findings), over real HTTP on an archive of this module's own (test_publish's
fixtures): an analysis name belongs to its first publisher, DataLink ``#coderived`` never
joins two publishers' products, and a models file sent with other bytes than its record's
is refused in those words."""

# ruff: noqa: F811  (test_publish's fixtures are imported, then used as arguments)
from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest
import requests

import ctanb

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import provenance_steps  # noqa: E402
from test_publish import (  # noqa: E402, F401  (fixtures shared with test_publish)
    CRAB_TOKEN,
    VELA_TOKEN,
    _cli,
    _links,
    _state_counts,
    crab_counts,
    crab_event,
    maker_home,
    own,
)
from test_publish_hostile import with_references  # noqa: E402

PKS_TOKEN = "demo-token-pks2155"


def _coderived(url: str, did: str, token: str) -> set[str]:
    return {requests.utils.unquote(str(r["access_url"]).rsplit("/", 1)[1])
            for r in _links(url, did, token) if str(r["semantics"]) == "#coderived"}  # fmt: skip


def test_an_analysis_belongs_to_its_first_publisher(own, crab_counts, tmp_path):
    from ctanb.client.publish import PublishRefusedError

    vela = ctanb.connect(own.url, token=VELA_TOKEN)
    pks = ctanb.connect(own.url, token=PKS_TOKEN)
    first = vela.publish(crab_counts, curation={"analysis": "vela-t6"}).did
    injected = tmp_path / "injected.fits"
    provenance_steps.smooth_counts_map(str(crab_counts), str(injected), radius_deg=0.2)
    before = _state_counts(own.db)
    # the tester's command line, then the same through the API and raw HTTP
    result = _cli("archive", "publish", str(injected), "--archive", own.url, "--token",
                  PKS_TOKEN, "--curation", '{"analysis": "vela-t6", "title": "injected"}')  # fmt: skip
    assert result.returncode != 0
    assert "analysis 'vela-t6' belongs to another publisher" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(PublishRefusedError) as info:
        pks.publish(injected, curation={"analysis": "vela-t6"})
    assert info.value.condition == "analysis"
    resp = requests.post(f"{own.url}/publish", data=injected.read_bytes(),
                         params={"CURATION": json.dumps({"analysis": "vela-t6"})},
                         headers={"Content-Type": "application/fits",
                                  "Authorization": f"Bearer {PKS_TOKEN}"}, timeout=120)  # fmt: skip
    assert resp.status_code == 409 and "vela-t6" in resp.json()["error"], resp.text
    assert _state_counts(own.db) == before  # nothing half-written
    assert _coderived(own.url, first, VELA_TOKEN) == set()
    # the owner adds to its analysis; its products link each other
    mine = vela.publish(injected, curation={"analysis": "vela-t6"}).did
    assert _coderived(own.url, first, VELA_TOKEN) == {mine}
    assert _coderived(own.url, mine, VELA_TOKEN) == {first}


def test_coderived_never_joins_two_publishers_products(own, crab_counts, tmp_path):
    """pks2155-team publishes a product made from the same counts map (the same activity in
    its lineage) as crab-team's: neither lists the other as #coderived."""
    crab = ctanb.connect(own.url, token=CRAB_TOKEN)
    pks = ctanb.connect(own.url, token=PKS_TOKEN)
    ours = tmp_path / "ours.fits"
    theirs = tmp_path / "theirs.fits"
    provenance_steps.smooth_counts_map(str(crab_counts), str(ours), radius_deg=0.3)
    provenance_steps.smooth_counts_map(str(crab_counts), str(theirs), radius_deg=0.4)
    a = crab.publish(ours).did
    b = crab.publish(theirs).did
    # crab-team's two products share the counts activity: coderived, as before
    assert b in _coderived(own.url, a, CRAB_TOKEN)
    other = tmp_path / "other.fits"
    provenance_steps.smooth_counts_map(str(crab_counts), str(other), radius_deg=0.5)
    c = pks.publish(other).did
    assert c not in _coderived(own.url, a, CRAB_TOKEN) | _coderived(own.url, b, CRAB_TOKEN)
    assert not _coderived(own.url, c, PKS_TOKEN) & {a, b}


def _models_product(crab_event: Path, folder: Path) -> tuple[Path, Path]:
    models = folder / "models_start.yaml"
    models.write_text("components:\n- name: crab\n  type: SkyModel\n")
    product = folder / "with_models.fits"
    with_references(str(crab_event), [str(models)], str(product))
    return product, models


ALTERED = ("input models_start.yaml was sent but its sha256 differs from the one recorded in "
           "the product's provenance (altered after the analysis?)")  # fmt: skip


def test_an_altered_models_file_is_called_altered(own, crab_event, tmp_path):
    from ctanb.client.publish import PublishRefusedError

    product, models = _models_product(crab_event, tmp_path)
    models.write_text("components:\n- name: crab\n  type: SkyModel\n# changed later\n")
    crab = ctanb.connect(own.url, token=CRAB_TOKEN)
    before = _state_counts(own.db)
    # the file is where the record says, with other bytes
    with pytest.raises(PublishRefusedError) as info:
        crab.publish(product)
    assert info.value.condition == "inputs" and ALTERED in str(info.value), str(info.value)
    assert "not sent" not in str(info.value)
    # a hand-made upload: product.fits + inputs/models_start.yaml (altered)
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        tar.add(product, arcname="product.fits")
        tar.add(models, arcname="inputs/models_start.yaml")
    resp = requests.post(f"{own.url}/publish", data=body.getvalue(),
                         headers={"Content-Type": "application/x-tar",
                                  "Authorization": f"Bearer {CRAB_TOKEN}"}, timeout=120)  # fmt: skip
    assert resp.status_code == 400 and ALTERED in resp.json()["error"], resp.text
    assert _state_counts(own.db) == before
    # really not sent (gone): said so, as before
    models.unlink()
    with pytest.raises(PublishRefusedError) as info:
        crab.publish(product)
    assert "models_start.yaml is a models or configuration file that was not sent" in str(
        info.value
    )
