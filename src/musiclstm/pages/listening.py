"""The blind rating page of a listening test, served by `musiclstm listen serve STUDY`.

A rater presses Start and gets an anonymous id, kept in the page's address (`?rater=...`), so that a
reload or a bookmark brings them back where they stopped; the id is stored with their first answer,
so Start presses that lead to no answer store nothing. The page then offers one clip at a time in
the rater's own random order: an audio player, the specification's three ratings (1-5) and "Bach or
computer?", and a progress bar. Each answer is stored (one SQLite transaction) before the next clip
shows. The page reads only the study's clip list and audio: never its answer key, and never another
rater's answers. Streamlit serves nothing from the study folder but the clips it is handed.
A rater never sees a traceback or a server path: a damaged ratings store or anything unexpected
(a hostile client's widget values too) is a short message on the page and the detail in the server's log.
"""

from __future__ import annotations

import logging
import os

import streamlit as st

from musiclstm import QUESTIONS, DamagedStoreError, MusicLSTMError, RatingsStore, open_study

logger = logging.getLogger("musiclstm.pages.listening")  # not __name__: `streamlit run` names the page __main__
STORE_TROUBLE = (
    "The study's answers cannot be read or stored right now (the server's log says why). "
    "Please tell the person running the test."
)
PAGE_TROUBLE = (
    "Something went wrong on the server (its log says what). Please reload the page; "
    "if it happens again, tell the person running the test."
)

SCALE_HELP = "1 = poor, 5 = excellent"
QUESTION_HELP = {
    "musicality": "How musical is it: does it sound like music you would want to hear?",
    "coherence": "Does it hang together: phrases, harmony and voices that make sense as a whole?",
    "creativity": "How original and interesting is it?",
}


@st.cache_resource
def cached_study(folder: str):
    return open_study(folder)


def start_page(study) -> None:
    st.write(
        f"You will hear {len(study.clip_ids)} short clips of {study.info['bars']} bars, one after another. "
        f"Some are by {study.real_name}, some were composed by a computer. Rate each one, then guess who made it. "
        "There are no right ratings: say what you hear. You can stop at any time and come back with the "
        "address the page shows once you start."
    )
    if st.button("Start", type="primary"):
        st.query_params["rater"] = RatingsStore.new_rater()
        st.rerun()


def rating_form(study, rater: str, clip: str) -> None:
    """The questions about one clip; a complete answer is stored, an incomplete one asked again."""
    st.audio(str(study.clip_path(clip)), format="audio/wav")
    computer, real = "a computer", study.real_name
    with st.form(f"answer-{clip}", clear_on_submit=True):
        ratings = {
            question: st.radio(
                f"{question.capitalize()}: {QUESTION_HELP[question]}",
                [1, 2, 3, 4, 5],
                index=None,
                horizontal=True,
                help=SCALE_HELP,
                key=f"{clip}-{question}",
            )
            for question in QUESTIONS
        }
        guess = st.radio(f"{real} or computer?", [real, computer], index=None, horizontal=True, key=f"{clip}-guess")
        submitted = st.form_submit_button("Submit and go on", type="primary")
    if not submitted:
        return
    if guess is None or None in ratings.values():
        st.warning("Please answer all four questions before going on.")
        return
    try:
        study.ratings.submit(rater, clip, ratings, {real: "real", computer: "computer"}.get(guess, guess))
    except DamagedStoreError:
        raise
    except MusicLSTMError as error:  # a refused answer: the reason, which names no file
        st.error(str(error))
        return
    st.rerun()


def main() -> None:
    st.set_page_config(page_title="Listening test", layout="centered")
    st.title("Listening test")
    try:
        study = cached_study(os.environ["MUSICLSTM_STUDY"])
    except (KeyError, MusicLSTMError) as error:
        st.error(f"No study to serve: {error}. Start the page with `musiclstm listen serve STUDY_FOLDER`.")
        return
    try:
        rater_page(study, st.query_params.get("rater"))
    except DamagedStoreError:
        logger.exception("the rating page cannot use the study's ratings store")
        st.error(STORE_TROUBLE)
    except Exception:  # noqa: BLE001 - anything else: a short message for the rater, the traceback in the log
        logger.exception("the rating page failed")
        st.error(PAGE_TROUBLE)


def rater_page(study, rater: str | None) -> None:
    """The page for one rater: Start, the next clip to rate, or thanks when all are rated."""
    if rater is None:
        start_page(study)
        return
    if not RatingsStore.is_rater_id(rater):
        st.error("This rater id is not known to this study. Start again as a new rater.")
        if st.button("Start as a new rater"):
            st.query_params["rater"] = RatingsStore.new_rater()
            st.rerun()
        return
    order = study.order_for(rater)
    done = study.ratings.answered(rater)
    st.progress(len(done) / len(order), text=f"{len(done)} of {len(order)} clips rated")
    remaining = [clip for clip in order if clip not in done]
    if not remaining:
        st.success("All clips are rated. Thank you for listening!")
        return
    st.caption(f"To stop and come back later, keep this page's address. Your anonymous id: {rater}")
    st.subheader(f"Clip {len(done) + 1}")
    rating_form(study, rater, remaining[0])


if __name__ == "__main__":  # as `streamlit run` executes it
    main()
