"""The text a case is found by: one normalisation for the stored text and the query."""

from __future__ import annotations

from engine.search import case_text, normalize


def test_kana_width_and_case_are_folded_alike() -> None:
    assert normalize("ヤマダ") == normalize("やまだ") == normalize("ﾔﾏﾀﾞ") == "やまだ"
    assert normalize("ＭＡ－２０２６") == normalize("ma-2026")
    assert normalize("  山田\u3000 花子 ") == "山田 花子"


def test_a_cases_text_holds_number_summary_and_each_members_name_and_kana() -> None:
    text = case_text("MA-2026-00001", "介護と子育て", [("山田 花子", "ヤマダ ハナコ"), ("山田 太郎", "")])
    for part in ("ma-2026-00001", "介護と子育て", "やまだ はなこ", "山田 太郎"):
        assert part in text


def test_the_pairs_of_a_text_stay_within_its_words() -> None:
    from engine.search import grams

    assert grams("山田 はなこ ma-1") == {"山田", "はな", "なこ", "ma", "a-", "-1"}
    assert grams("林") == set()
