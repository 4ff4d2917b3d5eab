"""What an error dialog says: the user's situation in full, a traceback only for a defect."""

from svetlana.core.errors import InputError
from svetlana.gui.errors import describe


def test_a_users_error_has_no_traceback_and_a_defect_has_one():
    try:
        raise InputError("choose an image and its mask first", "plate1.tif")
    except InputError as exc:
        message, details = describe(exc)
    assert "choose an image" in message and "plate1.tif" in message
    assert details == ""  # no "Show Details…" with Python inside for an expected situation
    try:
        {}["missing"]
    except KeyError as exc:
        message, details = describe(exc)
    assert "Something went wrong inside Svetlana" in message
    assert "Traceback" in details and "KeyError" in details
