from test_build_cli import build, built

HEADER = "video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode\n"
ROWS = "v1,0,I love it,1.5,0,0,0,Positive,test\nv1,1,It is fine,0.0,0,0,0,Neutral,test\nv2,3,awful,-2,0,0,0,Negative,train\n"


def test_msa_keeps_the_score_and_counts_zero_as_positive(tmp_path, capsys):
    (tmp_path / "label.csv").write_text(HEADER + ROWS + "v3,1,oops,high,0,0,0,x,test\n")
    code, out, _ = build(
        capsys, "mosei", tmp_path / "label.csv", "--out", tmp_path / "o.json", "--media-prefix", "M/"
    )
    assert code == 0 and "label.csv:5: sentiment score 'high'" in out
    records = built(tmp_path / "o.json", "msa")
    assert [(r["response"], r["score"]) for r in records] == [
        ("Positive.", 1.5),
        ("Positive.", 0.0),
        ("Negative.", -2),
    ]
    assert records[0]["images"] == ["M/v1_0.png"] and records[0]["query"].startswith(
        'The person says: "I love it" <sentiment>'
    )


def test_split_and_video_media(tmp_path, capsys):
    (tmp_path / "label.csv").write_text(HEADER + ROWS)
    argv = (
        "mosei",
        tmp_path / "label.csv",
        "--out",
        tmp_path / "o.json",
        "--split",
        "train",
        "--media",
        "video",
    )
    assert build(capsys, *argv)[0] == 0
    assert [r["videos"] for r in built(tmp_path / "o.json", "msa")] == [["v2_3.mp4"]]


def test_mer_takes_the_strongest_emotion(tmp_path, capsys):
    (tmp_path / "label.csv").write_text(HEADER + ROWS)
    (tmp_path / "emo.csv").write_text(
        "video_id,clip_id,happy,sad,anger,surprise,disgust,fear\nv1,0,2,0,0,0,0,0\nv1,1,0,0,0,0,0,0\n"
    )
    argv = ("mosei", tmp_path / "label.csv", "--emotions", tmp_path / "emo.csv", "--out", tmp_path / "o.json")
    code, out, _ = build(capsys, *argv)
    assert code == 0 and "no emotion label: 1" in out
    assert [r["response"] for r in built(tmp_path / "o.json", "mer")] == ["Happy.", "Neutral."]


def test_tie_goes_to_the_first_column():
    from m2se.sources.mosei import strongest

    assert strongest(dict(happy="0", sad="1", anger="1", surprise="0", disgust="0", fear="1")) == "Sadness"


def test_non_finite_scores_and_intensities_are_counted_skips(tmp_path, capsys):
    rows = "".join(
        f"v{i},0,words,{label},0,0,0,x,test\n" for i, label in enumerate(["nan", "inf", "-inf", "1e400"])
    )
    (tmp_path / "label.csv").write_text(HEADER + rows + "v9,0,fine,-0.5,0,0,0,x,test\n")
    code, out, _ = build(capsys, "mosei", tmp_path / "label.csv", "--out", tmp_path / "o.json")
    assert (
        code == 0
        and "broken row: 4" in out
        and "label.csv:2: sentiment score 'nan' is not a finite number" in out
    )
    assert (
        "NaN" not in (tmp_path / "o.json").read_text() and "Infinity" not in (tmp_path / "o.json").read_text()
    )
    assert [(r["response"], r["score"]) for r in built(tmp_path / "o.json", "msa")] == [("Negative.", -0.5)]
    (tmp_path / "emo.csv").write_text(
        "video_id,clip_id,happy,sad,anger,surprise,disgust,fear\nv0,0,nan,0,0,0,0,0\nv9,0,0,inf,0,0,0,0\n"
    )
    argv = ("mosei", tmp_path / "label.csv", "--emotions", tmp_path / "emo.csv", "--out", tmp_path / "m.json")
    code, out, err = build(capsys, *argv)
    assert code == 2 and "emo.csv:2: emotion intensities are not finite numbers" in out
    assert "no records (7 skipped), nothing written" in err and not (tmp_path / "m.json").exists()


def test_scores_off_the_scale_or_not_plain_decimals_are_counted_skips(tmp_path, capsys):
    rows = "v1,0,a,7.5,0,0,0,x,test\nv1,1,b,1_0,0,0,0,x,test\nv1,2,c,\u0661,0,0,0,x,test\nv1,3,d,-0.5,0,0,0,x,test\n"
    (tmp_path / "label.csv").write_text(HEADER + rows, encoding="utf-8")
    code, out, _ = build(capsys, "mosei", tmp_path / "label.csv", "--out", tmp_path / "o.json")
    assert code == 0 and "sentiment score 7.5 is outside CMU-MOSEI's [-3, 3]" in out
    assert "sentiment score '1_0'" in out and "sentiment score '\u0661'" in out  # float() read 10.0 and 1.0
    assert [r["score"] for r in built(tmp_path / "o.json", "msa")] == [-0.5]
