from detection.csv_export import spreadsheet_safe


def test_text_a_spreadsheet_would_take_for_a_formula_is_kept_as_text():
    for formula in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert spreadsheet_safe(formula) == "'" + formula


def test_other_text_and_numbers_are_left_as_they_are():
    assert spreadsheet_safe("holiday.jpg") == "holiday.jpg"
    assert spreadsheet_safe("") == ""
    assert spreadsheet_safe(0.91) == 0.91
    assert spreadsheet_safe(-1) == -1
