"""The shapes of the accounts API (schema at /api/schema/)."""

from __future__ import annotations

from rest_framework import serializers


class TokenCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")
