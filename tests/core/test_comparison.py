from workstation.core.comparison import ShownStudy, interval_text, study_tags


def test_interval_text():
    assert interval_text("20240312", "20250314") == "12 months"
    assert interval_text("20250301", "20250314") == "13 days"
    assert interval_text("20220101", "20250314") == "3 y 2 mo"
    assert interval_text("20250314", "20250314") == "same day"
    assert interval_text("", "20250314") == "" and interval_text("20250314", "20240101") == ""


def test_current_and_priors_of_one_patient_are_tagged():
    shown = [
        ShownStudy(0, "P1", "S-new", "20250314", "093000"),
        ShownStudy(1, "P1", "S-old", "20240312", "141500"),
        ShownStudy(2, "P1", "S-new", "20250314", "093000"),
        ShownStudy(3, "P2", "S-other", "20200101"),  # another patient, alone: no tag
    ]
    tags = study_tags(shown)
    assert tags[0].text == "CURRENT  2025-03-14" and not tags[0].is_prior
    assert tags[2] == tags[0]
    assert tags[1].text == "PRIOR  2024-03-12  (12 months earlier)" and tags[1].is_prior
    assert 3 not in tags


def test_same_day_and_unknown_dates():
    tags = study_tags(
        [ShownStudy("a", "P", "1", "20250314", "080000"), ShownStudy("b", "P", "2", "20250314", "")]
    )
    assert tags["a"].text.startswith("CURRENT")
    assert tags["b"].text == "PRIOR  2025-03-14  (same day, earlier)"
    tags = study_tags([ShownStudy("a", "P", "1", ""), ShownStudy("b", "P", "2", "20250314")])
    assert tags["a"].text == "PRIOR  date unknown"
    assert study_tags([ShownStudy("a", "P", "1", "20250314")]) == {}
