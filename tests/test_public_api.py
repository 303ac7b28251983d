"""The public API that the command line and the studio call: every name it promises is there."""

import musiclstm


def test_every_name_in_the_public_api_can_be_imported():
    missing = [name for name in musiclstm.__all__ if not hasattr(musiclstm, name)]
    assert missing == []
    assert callable(musiclstm.generate) and callable(musiclstm.open_composer)  # functions, not their modules
