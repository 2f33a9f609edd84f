"""Widgets the template kit shares."""
from html import escape

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html
from django.utils.safestring import mark_safe


class QuickSelect(forms.Select):
    """A <select> written in one pass of Python: Django's Select renders every option through a template of its own,
    which for a list of customers (thousands at MSSP scale) was most of a page's time (bench/pages.py). Flat choices
    only (no option groups); the same markup otherwise."""

    def render(self, name, value, attrs=None, renderer=None):
        selected = {str(v) for v in self.format_value(value)}
        options = "".join(
            f'<option value="{escape(str(choice))}"{" selected" if str(choice) in selected else ""}>{escape(str(label))}'
            "</option>" for choice, label in self.choices)
        return format_html("<select name=\"{}\"{}>{}</select>", name, flatatt(self.build_attrs(self.attrs, attrs)),
                           mark_safe(options))  # noqa: S308 (every value and label escaped above)
