"""A headless run over a file gives the same results however fast it goes: the temporal
filters follow the file's timeline (Frame.t_filter), not the wall clock of processing."""
from __future__ import annotations

import time

import numpy as np

from engine.pipeline import Pipeline
from engine.sources.video import VideoSource
from engine.stage_factory import StageOptions, build_stages


def _run(path, stages, slow: bool) -> list:
    source = VideoSource(path)
    source.open()
    got = []

    def consume(fr) -> None:
        got.append(fr)
        if slow:  # a loaded machine: every frame waits; lossless hand-over slows the stages too
            time.sleep(0.03 * (fr.frame.index % 3))

    pipeline = Pipeline(source, stages, lossless=True, owns_stages=False)
    pipeline.add_consumer(consume)
    pipeline.start()
    while not pipeline.wait(0.1) and len(got) < 30:
        pass
    pipeline.close()
    assert pipeline.join(10.0)
    source.close()
    for stage in stages:
        stage.reset()
    return got[:30]


def test_fast_and_slow_runs_give_the_same_fits(shared_file):
    stages = build_stages(["face", "body"], StageOptions(device="cpu", mesh_colours=False))
    try:
        clip = shared_file("media/talking_head.mp4")
        fast, slow = _run(clip, stages, False), _run(clip, stages, True)
    finally:
        for stage in stages:
            stage.close()
    assert [fr.frame.index for fr in fast] == [fr.frame.index for fr in slow] == list(range(30))
    fitted = 0
    for a, b in zip(fast, slow):
        for name, field in (("face", "vertices_image"), ("body", "vertices")):
            ra, rb = a.results.get(name), b.results.get(name)
            assert (ra is None) == (rb is None)
            if ra is not None:
                fitted += 1
                assert np.array_equal(getattr(ra, field), getattr(rb, field)), (name, a.frame.index)
    assert fitted >= 55
