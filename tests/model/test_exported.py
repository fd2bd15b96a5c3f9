"""The export record's settings: what a run's config gets from m2se_export.json."""

from m2se.model.exported import ExportRecord


def _record(**processor) -> ExportRecord:
    return ExportRecord(format="native", dtype="bfloat16", base="b", ckpt="c", processor=processor)


def test_recorded_settings_become_their_config_keys():
    values = _record(num_frames=4, max_tiles=2, video_resize="decoder", tile_size=56).config_values()
    assert values == {"data.num_frames": 4, "data.max_tiles": 2, "data.video_resize": "decoder"}


def test_an_export_from_before_video_resize_was_recorded_reads_with_pil():
    """Exports written before the setting existed were trained on PIL-resized frames."""
    assert _record(num_frames=8).config_values()["data.video_resize"] == "pil"
