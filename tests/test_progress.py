"""Progress bars: the ``progress`` argument is checked."""
import pytest

from tfxattr.progress import check_progress, progress_bar


def test_progress_accepts_true_false_auto_and_refuses_anything_else():
    assert check_progress(True) is True and check_progress(False) is False and check_progress("auto") == "auto"
    with pytest.raises(ValueError, match=r"progress must be one of .*'bogus'"):
        check_progress("bogus")
    with pytest.raises(ValueError, match=r"did you mean 'auto'"):
        check_progress("auot")
    with pytest.raises(ValueError, match="progress must be True, False or 'auto', got 1"):
        check_progress(1)
    with pytest.raises(ValueError, match="progress"):
        with progress_bar(5, "x", "bogus"):
            pass
