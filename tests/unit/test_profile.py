"""Bursar profiles (bursar/profile.py): every field option, the aggregates, the rules and every
validation error (file, line and key named)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bursar import profile as pf
from bursar.errors import FieldTooWide, SettingsError
from bursar.rules import bursar_file as bf

BASE = '''name = "test"
version = "3"

[files]
name = "{prefix}.{date}.{export_id}.{kind}"

[lines]
format = "fixed"
separator = "|"

[[lines.fields]]
name = "the field"
source = "amount"
width = 10
'''


def one_field(**options) -> pf.Profile:
    text = BASE + "".join(f"{k} = {_toml(v)}\n" for k, v in options.items())
    return pf.loads(text, "t.toml")


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    return str(v)


def values(**changes) -> pf.LineValues:
    base = {"emplid": "123", "amount": Decimal("12.50"), "account": "ACC", "term": "2261", "fine_id": "F1",
            "billing_date": date(2026, 3, 2), "due_date": date(2026, 4, 25), "item_code": "IC",
            "description": "Overdue fine"}
    return pf.LineValues(**{**base, **changes})


# -- field options ---------------------------------------------------------------------------

@pytest.mark.parametrize("options, amount, expected", [
    ({}, "12.50", "12.50     "),
    ({"justify": "right"}, "12.50", "     12.50"),
    ({"justify": "center"}, "12.50", "  12.50   "),
    ({"justify": "right", "pad": "0"}, "12.50", "0000012.50"),
    ({"pad": "*"}, "12.50", "12.50*****"),
    ({"implied_decimals": True, "justify": "right", "pad": "0"}, "12.50", "0000001250"),
    ({"decimals": 0}, "12.00", "12        "),
    ({"decimals": 3}, "12.50", "12.500    "),
    ({"sign": "none"}, "-12.50", "12.50     "),
    ({"sign": "minus"}, "-12.50", "-12.50    "),
    ({"sign": "minus"}, "12.50", "12.50     "),
    ({"sign": "plus-minus"}, "12.50", "+12.50    "),
    ({"sign": "plus-minus"}, "-12.50", "-12.50    "),
    ({"sign": "trailing-minus"}, "-12.50", "12.50-    "),
    ({"sign": "parentheses"}, "-12.50", "(12.50)   "),
    ({"sign": "parentheses", "implied_decimals": True}, "-0.05", "(5)       "),
])
def test_amount_options(options, amount, expected):
    p = one_field(**options)
    assert pf.format_line(p, values(amount=Decimal(amount))) == expected


@pytest.mark.parametrize("fmt, expected", [
    ("%m%d%Y", "04252026  "),
    ("%Y-%m-%d", "2026-04-25"),
    ("%d/%m/%y", "25/04/26  "),
    ("%Y%j", "2026115   "),
])
def test_date_formats(fmt, expected):
    p = pf.loads(BASE.replace('source = "amount"', 'source = "due_date"') + f'date_format = "{fmt}"\n', "t.toml")
    assert pf.format_line(p, values()) == expected


@pytest.mark.parametrize("source, expected", [
    ("emplid", "123"), ("account", "ACC"), ("term", "2261"), ("fine_id", "F1"),
    ("description", "Overdue fine"), ("billing_date", "03022026"),
])
def test_every_source(source, expected):
    p = pf.loads(BASE.replace('source = "amount"', f'source = "{source}"').replace("width = 10", "width = 12"),
                 "t.toml")
    assert pf.format_line(p, values()) == expected.ljust(12)


def test_literal_and_when():
    p = pf.loads(BASE.replace('source = "amount"', 'source = "literal"') + 'value = "Y"\nwhen = "credit"\n', "t")
    assert pf.format_line(p, values(amount=Decimal("-1.00"))) == "Y".ljust(10)
    assert pf.format_line(p, values()) == " " * 10


def test_start_columns_and_line_length():
    text = BASE.replace('separator = "|"', 'line_length = 30') + '''start = 1
[[lines.fields]]
source = "emplid"
width = 5
start = 20
'''
    line = pf.format_line(pf.loads(text, "t"), values())
    assert line == "12.50".ljust(19) + "123  " + " " * 6 and len(line) == 30


def test_fixed_separator():
    text = BASE + '[[lines.fields]]\nsource = "emplid"\nwidth = 4\n'
    assert pf.format_line(pf.loads(text, "t"), values()) == "12.50     |123 "


@pytest.mark.parametrize("quoting, description, expected", [
    ("minimal", "Overdue fine", "12.50,Overdue fine"),
    ("minimal", 'Lost, "damaged"', '12.50,"Lost, ""damaged"""'),
    ("all", "Overdue fine", '"12.50","Overdue fine"'),
    ("none", "Overdue fine", "12.50,Overdue fine"),
])
def test_csv_quoting(quoting, description, expected):
    text = (BASE.replace('format = "fixed"', f'format = "csv"\nquoting = "{quoting}"').replace('separator = "|"', "")
            + '[[lines.fields]]\nsource = "description"\n')
    assert pf.format_line(pf.loads(text, "t"), values(description=description)) == expected


def test_csv_without_quoting_refuses_a_separator_in_a_value():
    text = (BASE.replace('format = "fixed"', 'format = "csv"\nquoting = "none"').replace('separator = "|"', "")
            + '[[lines.fields]]\nsource = "description"\n')
    with pytest.raises(pf.BadLine):
        pf.format_line(pf.loads(text, "t"), values(description="a,b"))


def test_csv_width_is_a_maximum_and_pads_only_when_asked():
    text = BASE.replace('format = "fixed"', 'format = "csv"').replace('separator = "|"', "")
    assert pf.format_line(pf.loads(text, "t"), values()) == "12.50"
    assert pf.format_line(pf.loads(text + 'justify = "right"\npad = "0"\n', "t"), values()) == "0000012.50"
    with pytest.raises(FieldTooWide):
        pf.format_line(pf.loads(text, "t"), values(amount=Decimal("123456789.00")))


def test_too_wide_value_is_flagged_never_truncated():
    with pytest.raises(FieldTooWide) as info:
        pf.format_line(one_field(), values(amount=Decimal("12345678.00")))
    assert info.value.field == "the field" and info.value.width == 10


@pytest.mark.parametrize("template, expected", [
    ("{count},{total}", "4,-3.00"),
    ("H{count}|{charges_count}|{credits_count}", "H4|2|2"),
    ("{charges_total};{credits_total}", "15.00;18.00"),
    ("{date}-{export_id}", "20260302-7"),
])
def test_aggregates(template, expected):
    p = pf.loads(BASE + f'[header]\ntext = "{template}"\n[footer]\ntext = "END {{count}}"\n', "t")
    amounts = [Decimal("10.00"), Decimal("-8.00"), Decimal("5.00"), Decimal("-10.00")]
    out = pf.file_lines(p, ["a", "b", "c", "d"], amounts, export_date="20260302", export_id=7)
    assert out == [expected, "a", "b", "c", "d", "END 4"]


def test_aggregate_implied_decimals():
    p = pf.loads(BASE + '[header]\ntext = "{total}"\nimplied_decimals = true\n', "t")
    assert pf.file_lines(p, ["a"], [Decimal("12.34")], export_date="20260302", export_id=1)[0] == "1234"


def test_file_names():
    p = pf.loads(BASE.replace("{prefix}.{date}.{export_id}.{kind}", "{prefix}_{date}_{export_id}{kind}")
                 .replace('[lines]', 'date_format = "%y%m%d"\nkinds = ["C", "R"]\n\n[lines]'), "t")
    assert pf.file_name(p, "LIB", "20260302", 4, 2) == "LIB_260302_4R"
    pybursar = pf.builtin("pybursar")
    assert pf.file_name(pybursar, "LIB_charges.dat", "20260302", 4, 1) == bf.file_name("LIB_charges.dat",
                                                                                      "20260302", 4, 1)


# -- rules -----------------------------------------------------------------------------------

def test_rules():
    p = pf.loads(BASE + '[term]\nrule = "fixed"\ncode = "2263"\n[due]\nrule = "days-after"\ndays = 30\n', "t")
    assert pf.profile_term(p, date(2026, 3, 2)) == "2263"
    assert pf.profile_due_date(p, date(2026, 3, 2), 25) == date(2026, 4, 1)
    p = pf.loads(BASE + '[due]\nrule = "fixed"\ndate = "2026-06-30"\n', "t")
    assert pf.profile_due_date(p, date(2026, 3, 2), 25) == date(2026, 6, 30)
    p = pf.loads(BASE + '[due]\nday = 10\n[term]\nspring_until = 4\n', "t")
    assert pf.profile_due_date(p, date(2026, 3, 2), 25) == date(2026, 4, 10)
    assert pf.profile_term(p, date(2026, 5, 2)) == "2264"
    pybursar = pf.builtin("pybursar")
    assert pf.profile_due_date(pybursar, date(2026, 3, 26), 25) == bf.due_date(date(2026, 3, 26), 25)
    assert pf.profile_term(pybursar, date(2026, 6, 1)) == bf.term_code(date(2026, 6, 1))


def test_account_and_item_code_mapping():
    p = pf.loads(BASE + '''[accounts]
default = "D"
fee_types = { "Overdue fine" = "O" }
locations = [{ pattern = "^law", value = "L" }]
[item_codes]
default = "I"
''', "t")
    rule = pytest.fail
    assert pf.account_for(p, "Overdue fine", None, settings_rule=rule) == "O"
    assert pf.account_for(p, "Overdue fine", "law_main", settings_rule=rule) == "L"
    assert pf.account_for(p, "Other", "main", settings_rule=rule) == "D"
    assert pf.item_code_for(p, "Other", None) == "I"
    assert pf.account_for(pf.builtin("pybursar"), "x", None, settings_rule=lambda loc, fee: "S") == "S"


def test_builtins_load_and_pybursar_is_the_97_character_line():
    for name in ("pybursar", "peoplesoft-csv"):
        assert pf.load(name).name == name
    line = pf.format_line(pf.builtin("pybursar"), values(emplid="12345678901", account="531000000002"))
    assert len(line) == 97 and line == bf.format_line(bf.LineFields(
        "12345678901", "531000000002", Decimal("12.50"), date(2026, 4, 25), date(2026, 3, 2), "2261", "F1"))


# -- validation: refused at start with the file, the line and the key ------------------------

@pytest.mark.parametrize("edit, line, key, words", [
    (lambda t: t.replace("{kind}", "{knd}"), 5, "files.name", "unknown token {knd}"),
    (lambda t: t + '[header]\ntext = "{count},{sum}"\n', 16, "header.text", "unknown token {sum}"),
    (lambda t: t + '[footer]\ntext = "{total:>10}"\n', 16, "footer.text", "takes no format"),
    (lambda t: t + '[[lines.fields]]\nsource = "emplid"\nwidth = 4\nstart = 5\n', 18,
     "lines.fields[1].start", "overlapping"),
    (lambda t: t.replace('separator = "|"', "line_length = 8"), 9, "lines.line_length", "overflowing"),
    (lambda t: t + '[accounts]\nfee_types = { "Overdue fine" = "O" }\n', 15, "accounts", "no default"),
    (lambda t: t + '[item_codes]\nfee_types = { "Overdue fine" = "O" }\n', 15, "item_codes", "no default"),
    (lambda t: t.replace('source = "amount"', 'source = "amount"\ncolour = "red"'), 14,
     "lines.fields[0].colour", "unknown key"),
    (lambda t: t.replace('source = "amount"', 'source = "emplid_x"'), 13, "lines.fields[0].source", "one of"),
    (lambda t: t.replace("width = 10", "width = 0"), 14, "lines.fields[0].width", "at least 1"),
    (lambda t: t.replace("width = 10", 'width = "10"'), 14, "lines.fields[0].width", "must be int"),
    (lambda t: t.replace("width = 10", ""), 11, "lines.fields[0]", "needs a width"),
    (lambda t: t + 'justify = "middle"\n', 15, "lines.fields[0].justify", "one of"),
    (lambda t: t + 'pad = "ab"\n', 15, "lines.fields[0].pad", "one character"),
    (lambda t: t + 'sign = "cr"\n', 15, "lines.fields[0].sign", "one of"),
    (lambda t: t + 'date_format = "YYYY"\n', 15, "lines.fields[0].date_format", "%-directive"),
    (lambda t: t + 'decimals = 9\n', 15, "lines.fields[0].decimals", "0..4"),
    (lambda t: t.replace('source = "amount"', 'source = "item_code"'), 13, "lines.fields[0].source", "no [item_codes]"),
    (lambda t: t.replace(".{kind}", ""), 5, "files.name", "need {kind}"),
    (lambda t: t + '[due]\nrule = "weekly"\n', 16, "due.rule", "one of"),
    (lambda t: t + '[due]\nday = 31\n', 16, "due.day", "1..28"),
    (lambda t: t + '[term]\nrule = "fixed"\n', 15, "term", "needs code"),
    (lambda t: t + 'site = "x"\n', 15, "lines.fields[0].site", "unknown key"),
])
def test_validation_errors_name_the_file_line_and_key(edit, line, key, words):
    with pytest.raises(pf.ProfileError) as info:
        pf.loads(edit(BASE), "/etc/site.toml")
    message = str(info.value)
    assert isinstance(info.value, SettingsError)  # exit 2
    assert message.startswith(f"profile /etc/site.toml, line {line}: key {key}: "), message
    assert words in message


def test_toml_syntax_error_carries_the_line():
    with pytest.raises(pf.ProfileError, match=r"profile x.toml: .*line 2"):
        pf.loads('name = "a"\nversion = \n', "x.toml")


def test_unknown_profile_name(tmp_path):
    with pytest.raises(pf.ProfileError, match="neither a built-in profile"):
        pf.load(str(tmp_path / "missing.toml"))


def test_a_path_is_loaded(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(BASE)
    assert pf.load(str(path)).source == str(path)


# -- selection -------------------------------------------------------------------------------

SEL = '''[select]
min_amount = "5.00"
min_age_days = 14
fee_types_include = ["Overdue fine", "Lost item replacement fee"]
fee_types_exclude = ["Lost item replacement fee"]
locations_include = ["^main", "^law"]
locations_exclude = ["^law"]
'''


@pytest.mark.parametrize("fee_type, location, amount, created, verdict", [
    ("Overdue fine", "main_stacks", "5.00", date(2026, 2, 1), None),
    ("Other", "main_stacks", "5.00", date(2026, 2, 1), "excluded"),
    ("Lost item replacement fee", "main_stacks", "50.00", date(2026, 2, 1), "excluded"),
    ("Overdue fine", "branch", "5.00", date(2026, 2, 1), "excluded"),
    ("Overdue fine", "law_main", "5.00", date(2026, 2, 1), "excluded"),
    ("Overdue fine", None, "5.00", date(2026, 2, 1), "excluded"),
    ("Overdue fine", "main_stacks", "4.99", date(2026, 2, 1), "waiting"),
    ("Overdue fine", "main_stacks", "5.00", date(2026, 2, 20), "waiting"),
    ("Overdue fine", "main_stacks", "5.00", date(2026, 2, 15), None),  # exactly 14 days
    ("Overdue fine", "main_stacks", "5.00", None, "waiting"),
])
def test_selection(fee_type, location, amount, created, verdict):
    sel = pf.loads(BASE + SEL, "t").select
    result = pf.not_billed_because(sel, fee_type=fee_type, location=location, amount=Decimal(amount),
                                   created=created, today=date(2026, 3, 1))
    assert (result[0] if result else None) == verdict


@pytest.mark.parametrize("select, line, key, words", [
    ('min_amount = "five"\n', 16, "select.min_amount", "amount like"),
    ("min_age_days = -1\n", 15, "select", "negative"),
    ('locations_exclude = ["("]\n', 16, "select.locations_exclude", "bad pattern"),
    ("fee_types_include = [1]\n", 16, "select.fee_types_include", "non-empty strings"),
    ("user_groups = []\n", 16, "select.user_groups", "unknown key"),
    ('user_groups_include = ["Staff", ""]\n', 16, "select.user_groups_include", "non-empty strings"),
    ('user_groups_exclude = "Staff"\n', 16, "select.user_groups_exclude", "must be list"),
])
def test_selection_validation(select, line, key, words):
    with pytest.raises(pf.ProfileError) as info:
        pf.loads(BASE + "[select]\n" + select, "s.toml")
    assert str(info.value).startswith(f"profile s.toml, line {line}: key {key}: ") and words in str(info.value)


@pytest.mark.parametrize("select, group, verdict, words", [
    ('user_groups_include = ["Faculty", "Staff"]', "Staff", None, None),
    ('user_groups_include = ["Faculty", "Staff"]', "Undergraduate", "excluded",
     "user group 'Undergraduate' is not in the profile's select.user_groups_include"),
    ('user_groups_exclude = ["Staff"]', "Staff", "excluded",
     "user group 'Staff' is excluded by the profile's select.user_groups_exclude"),
    ('user_groups_exclude = ["Staff"]', "Faculty", None, None),
    ('user_groups_exclude = ["Staff"]', None, "unknown", "select.user_groups_exclude"),
    ('user_groups_include = ["Staff"]', None, "unknown", "its user group is not known"),
    ("min_amount = \"1.00\"", None, None, None),  # no user group criterion: the group is not needed
])
def test_selection_by_user_group(select, group, verdict, words):
    sel = pf.loads(BASE + "[select]\n" + select + "\n", "t").select
    result = pf.not_billed_because(sel, fee_type="Overdue fine", location="main", amount=Decimal("5.00"),
                                   created=date(2026, 2, 1), today=date(2026, 3, 1), user_group=group)
    assert (result[0] if result else None) == verdict
    if words:
        assert result is not None and words in result[1]


@pytest.mark.parametrize("fee_type, location, amount, created, words", [
    ("Other", "main_stacks", "5.00", date(2026, 2, 1), "fee type 'Other' is not in the profile's "
                                                        "select.fee_types_include"),
    ("Lost item replacement fee", "main_stacks", "50.00", date(2026, 2, 1), "select.fee_types_exclude"),
    ("Overdue fine", "branch", "5.00", date(2026, 2, 1), "location 'branch' matches none of the profile's "
                                                          "select.locations_include"),
    ("Overdue fine", "law_main", "5.00", date(2026, 2, 1), "select.locations_exclude"),
    ("Overdue fine", "main_stacks", "4.99", date(2026, 2, 1),
     "not yet eligible: amount 4.99 is below the profile's select.min_amount 5.00"),
    ("Overdue fine", "main_stacks", "5.00", date(2026, 2, 20),
     "not yet eligible: created 2026-02-20, younger than the profile's select.min_age_days 14; "
     "eligible on 2026-03-06"),
    ("Overdue fine", "main_stacks", "5.00", None, "its Alma creation date is not known"),
])
def test_selection_says_why_naming_the_key(fee_type, location, amount, created, words):
    sel = pf.loads(BASE + SEL, "t").select
    result = pf.not_billed_because(sel, fee_type=fee_type, location=location, amount=Decimal(amount),
                                   created=created, today=date(2026, 3, 1))
    assert result is not None and words in result[1]


# -- aggregation -----------------------------------------------------------------------------

def test_aggregate_defaults_to_one_line_per_fine():
    assert pf.loads(BASE, "t").aggregate == "fine"
    agg = pf.loads(BASE.replace('separator = "|"', 'separator = "|"\naggregate = "patron"'), "t")
    assert agg.aggregate == "patron"


@pytest.mark.parametrize("aggregate, source, line, key, words", [
    ('"customer"', "amount", 10, "lines.aggregate", "must be one of fine, patron"),
    ("true", "amount", 10, "lines.aggregate", "must be str"),
    ('"patron"', "fine_id", 14, "lines.fields[0].source", "fine_id is one fine's value"),
    ('"patron"', "description", 14, "lines.fields[0].source", "description is one fine's value"),
    ('"patron"', "item_code", 14, "lines.fields[0].source", "item_code is one fine's value"),
])
def test_aggregate_validation(aggregate, source, line, key, words):
    text = BASE.replace('separator = "|"', f'separator = "|"\naggregate = {aggregate}') \
        .replace('source = "amount"', f'source = "{source}"') + '[item_codes]\ndefault = "X"\n'
    with pytest.raises(pf.ProfileError) as info:
        pf.loads(text, "a.toml")
    assert str(info.value).startswith(f"profile a.toml, line {line}: key {key}: ") and words in str(info.value)


def _values(**over) -> pf.LineValues:
    base = dict(emplid="0123456789", amount=Decimal("5.00"), account="LIB", term="2261", fine_id="111",
                billing_date=date(2026, 3, 2), due_date=date(2026, 4, 25), description="Overdue fine")
    return pf.LineValues(**{**base, **over})


@pytest.mark.parametrize("other, same", [
    (dict(amount=Decimal("7.25"), fine_id="222", description="Other", item_code="X"), True),  # another fine
    (dict(emplid="0123456780"), False),  # another patron
    (dict(account="LAW"), False),  # another account
    (dict(amount=Decimal("-5.00"), billing_date=None, due_date=None), False),  # a credit: its own line
    (dict(billing_date=date(2026, 3, 3), due_date=date(2026, 4, 25)), False),  # billed another day
    (dict(term="2257"), False),
])
def test_which_lines_share_a_patron_line(other, same):
    from bursar.jobs.export import line_group

    assert (line_group(_values()) == line_group(_values(**other))) is same
    credit = dict(billing_date=None, due_date=None)
    assert line_group(_values(**credit, amount=Decimal("-1.00"))) == \
        line_group(_values(**credit, fine_id="9", amount=Decimal("-3.10")))
