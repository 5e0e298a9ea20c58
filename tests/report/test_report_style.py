"""Report palette: a distinct, stable colour per augmentation even for long lists."""

from auglens.report.style import BASELINE_COLOUR, OKABE_ITO, augmentation_colours


def test_every_augmentation_of_a_long_study_gets_its_own_colour():
    names = ["none", *(f"aug{i}" for i in range(20))]
    colours = augmentation_colours(names)
    assert colours["none"] == BASELINE_COLOUR
    assert [colours[f"aug{i}"] for i in range(7)] == list(OKABE_ITO)
    assert len(set(colours.values())) == len(names)
    assert augmentation_colours(names[:5]) == {n: colours[n] for n in names[:5]}  # stable prefix
