"""Small clinical exams for the renderer tests: contexts with the SAX stack cut to basal, mid and
apical slices (the renderers cost scales with planes), made once per session."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cmr_atlas.synth.clinical import cine, cohort
from cmr_atlas.synth.clinical.protocol import ClinicalExamContext

SEED = 41


def small_context(seed: int, index: int, mi_fraction: float = 0.0, **changes) -> ClinicalExamContext:
    """:func:`cohort.make_context` with three SAX slices (basal, mid, apical) and ``changes``."""
    ctx = cohort.make_context(seed, index, mi_fraction)
    geo = ctx.geometry
    keep = [geo.sax_planes[geo.sax_level(lv)] for lv in ("basal", "mid", "apical")]
    return dataclasses.replace(ctx, geometry=dataclasses.replace(geo, sax_planes=keep), **changes)


@pytest.fixture(scope="session")
def small_ctx():
    return small_context


@pytest.fixture(scope="session")
def cine_exam():
    """A 1.5 T exam's cine (two observers) and its context."""
    ctx = small_context(SEED, 0, field_t=1.5)
    return ctx, cine.render(ctx, np.random.default_rng(5), observers=2)


@pytest.fixture(scope="session")
def mi_ctx():
    """A full-stack exam of a subject with infarct scar."""
    for index in range(20):
        ctx = cohort.make_context(SEED, index, mi_fraction=1.0)
        if ctx.physiology.scar_segments and ctx.physiology.scar_transmurality > 0.4:
            return ctx
    raise AssertionError("no subject with scar among 20 MI draws")
