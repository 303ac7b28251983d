"""The blind rating page of a listening test, served by `musiclstm listen serve STUDY`.

A rater presses Start and gets an anonymous id, kept in the page's address (`?rater=...`), so that a
reload or a bookmark brings them back where they stopped. The page then offers one clip at a time in
the rater's own random order: an audio player, the specification's three ratings (1-5) and "Bach or
computer?", and a progress bar. Each answer is stored (one SQLite transaction) before the next clip
shows. The page reads only the study's clip list and audio: never its answer key, and never another
rater's answers. Streamlit serves nothing from the study folder but the clips it is handed.
"""

from __future__ import annotations

import os

import streamlit as st

from musiclstm import QUESTIONS, MusicLSTMError, open_study

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
        f"You will hear {len(study.clip_ids)} short clips of {study.settings['bars']} bars, one after another. "
        f"Some are by {study.real_name}, some were composed by a computer. Rate each one, then guess who made it. "
        "There are no right ratings: say what you hear. You can stop at any time and come back with the "
        "address the page shows once you start."
    )
    if st.button("Start", type="primary"):
        st.query_params["rater"] = study.ratings.new_rater()
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
        study.ratings.submit(rater, clip, ratings, "real" if guess == real else "computer")
    except MusicLSTMError as error:
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
    rater = st.query_params.get("rater")
    if rater is None:
        start_page(study)
        return
    if not study.ratings.has_rater(rater):
        st.error("This rater id is not known to this study. Start again as a new rater.")
        if st.button("Start as a new rater"):
            st.query_params["rater"] = study.ratings.new_rater()
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
