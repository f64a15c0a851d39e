"""The verdict on every calibration clip, exactly: the clean scenes have no defect, each defective
clip has its own and no other."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from slamon.model import Defect
from slamon.video.calibration import CLIPS
from slamon.video.quality import Baseline, Sample, Thresholds, assess, measure

CLEAN = [name for name, clip in CLIPS.items() if not clip.expected]
DEFECTIVE = [name for name, clip in CLIPS.items() if clip.expected]


def test_the_set_covers_every_defect_quality_decides() -> None:
    covered = set().union(*(clip.expected for clip in CLIPS.values()))
    assert covered == {
        Defect.NO_SIGNAL,
        Defect.LOW_RESOLUTION,
        Defect.BLACK,
        Defect.TOO_DARK,
        Defect.TOO_BRIGHT,
        Defect.FROZEN,
        Defect.BLUR,
        Defect.COLOR_CAST,
        Defect.NOISE,
        Defect.OCCLUDED,
    }
    assert {"clean", "static", "bars", "testsrc2"} <= set(CLEAN)


@pytest.mark.parametrize("name", list(CLIPS))
def test_verdict(samples: Mapping[str, Sample], name: str) -> None:
    sample = samples[name]
    assert len(sample.frames) == 50
    verdict = assess(sample.frames, sample.native)
    assert verdict.defects == CLIPS[name].expected, verdict.metrics


@pytest.mark.parametrize("name", list(CLIPS))
def test_verdict_with_packet_sizes_unknown(samples: Mapping[str, Sample], name: str) -> None:
    """Packet sizes are optional evidence: without them every clip gets the same verdict."""
    sample = samples[name]
    frames = [type(f)(f.y, f.u, f.v) for f in sample.frames]
    verdict = assess(frames, sample.native)
    assert verdict.metrics.packet_bytes is None
    assert verdict.defects == CLIPS[name].expected


def _scaled(t: Thresholds, looser: bool, k: float) -> Thresholds:
    """Thresholds moved by a factor k towards finding fewer defects (looser) or more; the luma
    thresholds by their distance from black (16) and white (235)."""
    up, down = (1 + k, 1 - k) if looser else (1 - k, 1 + k)
    return Thresholds(
        dark_luma=16 + (t.dark_luma - 16) * down,
        bright_luma=235 - (235 - t.bright_luma) * down,
        blur=t.blur * down,
        cast=t.cast * up,
        noise=t.noise * up,
        frozen_share=t.frozen_share * up,
        occluded=t.occluded * up,
        flat_std=t.flat_std * down,
    )


@pytest.mark.parametrize("name", list(CLIPS))
def test_verdicts_hold_with_thresholds_moved_by_a_fifth(samples: Mapping[str, Sample], name: str) -> None:
    """The defaults are not on a knife's edge: moving every threshold by 20 % either way changes no
    verdict (black_share and the sizes are exact rules, left alone)."""
    sample = samples[name]
    for looser in (True, False):
        verdict = assess(sample.frames, sample.native, _scaled(Thresholds(), looser, 0.2))
        assert verdict.defects == CLIPS[name].expected, (looser, verdict.metrics)


@pytest.mark.parametrize("name", ["dark", "bright", "occluded", "color_cast", "blur_mild", "snow_partial"])
def test_a_scene_that_is_so_by_nature_is_not_a_defect(samples: Mapping[str, Sample], name: str) -> None:
    """With a baseline taken from the camera's own normal scene, that scene passes."""
    sample = samples[name]
    baseline = Baseline.of(measure(sample.frames, sample.native))
    assert assess(sample.frames, sample.native, baseline=baseline).defects == frozenset()


@pytest.mark.parametrize("name", DEFECTIVE)
def test_a_clean_baseline_hides_no_defect(samples: Mapping[str, Sample], name: str) -> None:
    clean = samples["clean"]
    baseline = Baseline.of(measure(clean.frames, clean.native))
    sample = samples[name]
    assert assess(sample.frames, sample.native, baseline=baseline).defects == CLIPS[name].expected


def test_a_night_baseline_still_sees_a_lens_cap(samples: Mapping[str, Sample]) -> None:
    dark = samples["dark"]
    baseline = Baseline.of(measure(dark.frames, dark.native))
    black = samples["black"]
    assert assess(black.frames, black.native, baseline=baseline).defects == {Defect.BLACK}


def test_the_verdict_detail_is_what_a_video_probe_result_carries(samples: Mapping[str, Sample]) -> None:
    sample = samples["black"]
    detail = assess(sample.frames, sample.native).detail()
    assert detail["width"] == 1920
    assert detail["height"] == 1080
    metrics = detail["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["mean_luma"] == pytest.approx(16.0, abs=0.5)
    assert metrics["black_share"] == 1.0
