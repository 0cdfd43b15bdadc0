"""The text a case is found by: one normalisation for the stored text and the query."""

from __future__ import annotations

from engine.casework.search import case_text, grams, normalize


def test_kana_width_and_case_are_folded_alike() -> None:
    assert normalize("ヤマダ") == normalize("やまだ") == normalize("ﾔﾏﾀﾞ") == "やまだ"
    assert normalize("ＭＡ－２０２６") == normalize("ma-2026")
    assert normalize("  山田\u3000 花子 ") == "山田 花子"


def test_a_cases_text_holds_number_summary_and_each_members_name_and_kana() -> None:
    text = case_text("MA-2026-00001", "介護と子育て", [("山田 花子", "ヤマダ ハナコ"), ("山田 太郎", "")])
    for part in ("ma-2026-00001", "介護と子育て", "やまだ はなこ", "山田 太郎"):
        assert part in text


def test_the_pairs_of_a_text_stay_within_its_words() -> None:
    assert grams("山田 はなこ ma-1") == {"山田", "はな", "なこ", "ma", "a-", "-1"}
    assert grams("林") == set()


def test_a_run_of_digits_is_indexed_by_its_pieces_of_three_to_six_digits_not_by_pairs() -> None:
    pieces = grams("ma-2026-00001")
    assert {"202", "026", "2026", "000", "0000", "00001", "0001", "001", "-2", "6-", "-0"} <= pieces
    assert not {"20", "00", "01"} & pieces  # pairs of digits: every case has them
    assert "000012" in grams("x0000123") and "0000123" not in grams("x0000123")  # six at most


def test_every_piece_of_a_word_in_the_text_is_a_piece_of_the_text() -> None:
    """What the search relies on: the cases holding any one piece of a query word include every
    case whose text holds the word."""
    text = case_text("MA-2026-01234", "家賃3ヶ月（2025年12月）滞納 ＴＥＬ０６１２３４５６７８", [("佐々木 陽菜", "ササキ ヒナ")])
    for word in text.split():
        for i in range(len(word)):
            for j in range(i + 1, len(word) + 1):
                assert grams(word[i:j]) <= grams(text), word[i:j]
