"""The rating page's logic, driven by Streamlit's AppTest (no browser; see test_listening_browser.py)."""

from __future__ import annotations

import sqlite3

from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.testing.v1 import AppTest

import musiclstm
from musiclstm import RatingsStore

PAGE = musiclstm.LISTENING_PAGE


def open_page(monkeypatch, study, rater: str | None = None) -> AppTest:
    monkeypatch.setenv("MUSICLSTM_STUDY", str(study.folder))
    page = AppTest.from_file(PAGE, default_timeout=60)
    if rater is not None:
        page.query_params["rater"] = rater
    return page.run()


def answer(page: AppTest, clip: str, ratings: dict, guess: str | None) -> AppTest:
    for question, value in ratings.items():
        page.radio(key=f"{clip}-{question}").set_value(value)
    if guess is not None:
        page.radio(key=f"{clip}-guess").set_value(guess)
    return page.button[0].click().run()


def shown_clip(page: AppTest) -> str:
    return next(radio.key for radio in page.radio).split("-")[0]


def test_start_gives_an_anonymous_id_and_the_first_clip_of_the_raters_own_order(monkeypatch, silent_study):
    page = open_page(monkeypatch, silent_study)
    assert "Some are by Bach" in page.markdown[0].value
    page.button[0].click().run()
    rater = page.query_params["rater"]
    assert RatingsStore.is_rater_id(rater)
    assert shown_clip(page) == silent_study.order_for(rater)[0] and len(page.get("audio")) == 1


def test_start_pressed_many_times_stores_no_rater_until_an_answer(monkeypatch, silent_study):
    for _ in range(5):
        open_page(monkeypatch, silent_study).button[0].click().run()
    with sqlite3.connect(silent_study.ratings.path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM raters").fetchone()[0] == 0
    page = open_page(monkeypatch, silent_study)
    page.button[0].click().run()
    rater = page.query_params["rater"]
    answer(page, shown_clip(page), {"musicality": 4, "coherence": 5, "creativity": 3}, "Bach")
    with sqlite3.connect(silent_study.ratings.path) as connection:
        assert connection.execute("SELECT id FROM raters").fetchall() == [(rater,)]


def test_a_complete_answer_is_stored_and_the_next_clip_shown(monkeypatch, silent_study):
    rater = silent_study.ratings.new_rater()
    page = open_page(monkeypatch, silent_study, rater)
    first, second = silent_study.order_for(rater)[:2]
    answer(page, first, {"musicality": 4, "coherence": 5, "creativity": 3}, "a computer")
    assert not page.exception and not page.error and not page.warning
    (stored,) = silent_study.ratings.answers()
    assert (stored.clip_id, stored.ratings["coherence"], stored.guess) == (first, 5, "computer")
    assert shown_clip(page) == second and "1 of 4 clips rated" in page.get("progress")[0].proto.text


def test_an_incomplete_answer_is_asked_again_and_stores_nothing(monkeypatch, silent_study):
    rater = silent_study.ratings.new_rater()
    page = open_page(monkeypatch, silent_study, rater)
    first = silent_study.order_for(rater)[0]
    answer(page, first, {"musicality": 4, "coherence": 5}, "Bach")
    assert "answer all four questions" in page.warning[0].value
    assert silent_study.ratings.answers() == [] and shown_clip(page) == first


def test_a_rater_who_is_done_is_thanked_and_an_unknown_id_is_named(monkeypatch, silent_study):
    rater = silent_study.ratings.new_rater()
    for clip in silent_study.clip_ids:
        silent_study.ratings.submit(rater, clip, {"musicality": 3, "coherence": 3, "creativity": 3}, "real")
    assert "All clips are rated" in open_page(monkeypatch, silent_study, rater).success[0].value
    page = open_page(monkeypatch, silent_study, "made-up-id")
    assert "not known to this study" in page.error[0].value and not page.get("audio")


def test_the_page_without_a_study_says_how_to_start_it(monkeypatch, tmp_path):
    monkeypatch.setenv("MUSICLSTM_STUDY", str(tmp_path))
    page = AppTest.from_file(PAGE, default_timeout=60).run()
    assert "not a study folder" in page.error[0].value and "musiclstm listen serve" in page.error[0].value
    assert not page.exception


def send_raw(page: AppTest, values: dict[str, tuple[str, object]]) -> AppTest:
    """Submit the form as a hostile client could: each radio's value in the proto field named, unchecked."""
    states = WidgetStates()
    for radio in page.radio:
        field, value = values[radio.key.split("-")[1]]
        state = states.widgets.add()
        state.id = radio.id
        setattr(state, field, value)
    submit = states.widgets.add()
    submit.id, submit.trigger_value = page.button[0].id, True
    page._run(states)
    return page


def test_radio_values_sent_as_integers_show_a_short_message_and_no_traceback(monkeypatch, silent_study, caplog):
    """The page's radios send strings; int_value makes Streamlit raise a TypeError inside st.radio."""
    page = open_page(monkeypatch, silent_study, silent_study.ratings.new_rater())
    send_raw(page, dict.fromkeys(["musicality", "coherence", "creativity", "guess"], ("int_value", 3)))
    assert not page.exception and len(page.error) == 1
    assert page.error[0].value.startswith("Something went wrong on the server (its log says what)")
    assert "/" not in page.error[0].value and silent_study.ratings.answers() == []
    assert "TypeError" in caplog.text  # the detail is in the server's log


def test_a_guess_or_rating_that_is_no_choice_of_the_page_is_asked_again_and_stores_nothing(monkeypatch, silent_study):
    page = open_page(monkeypatch, silent_study, silent_study.ratings.new_rater())
    ratings = {"musicality": ("string_value", "4"), "coherence": ("string_value", "5")}
    send_raw(page, {**ratings, "creativity": ("string_value", "9"), "guess": ("string_value", "Mozart")})
    assert "answer all four questions" in page.warning[0].value
    assert not page.exception and not page.error and silent_study.ratings.answers() == []


def test_a_ratings_store_truncated_under_the_page_is_a_short_message(monkeypatch, silent_study, caplog):
    page = open_page(monkeypatch, silent_study, silent_study.ratings.new_rater())
    silent_study.ratings.path.write_bytes(b"")
    answer(page, shown_clip(page), {"musicality": 4, "coherence": 5, "creativity": 3}, "Bach")
    assert not page.exception and len(page.error) == 1
    assert page.error[0].value.startswith("The study's answers cannot be read or stored right now")
    assert str(silent_study.folder) not in page.error[0].value
    assert "damaged ratings store (no such table" in caplog.text
