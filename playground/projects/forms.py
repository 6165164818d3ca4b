from __future__ import annotations

from django import forms

from playground.projects.models import Membership, Project


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=Project._meta.get_field("name").max_length)

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data["name"].split())


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)
