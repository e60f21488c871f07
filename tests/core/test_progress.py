import logging

from cmr_atlas.core.progress import Progress


def test_progress_logs_rate_and_final_line(caplog):
    log = logging.getLogger("t")
    with caplog.at_level(logging.INFO, logger="t"):
        p = Progress(log, "infer", 3, interval_s=3600)
        p.update()
        p.update(failed=True)
        assert not caplog.records  # throttled until the last unit
        p.update()
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert msg.startswith("infer: 3/3 exams (1 failed), ") and "exams/h" in msg and "eta 0 s" in msg
