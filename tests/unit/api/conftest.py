import pytest

from tests.personas import Api, make_persona


@pytest.fixture
def admin(db):
    return make_persona("alice-admin", "alpha", ["admin", "member", "reader"])


@pytest.fixture
def member(db):
    return make_persona("bob", "alpha", ["member", "reader"])


@pytest.fixture
def reader(db):
    return make_persona("carol", "alpha", ["reader"])


@pytest.fixture
def other(db):
    return make_persona("mallory", "beta", ["member", "reader"])


@pytest.fixture
def api_as():
    def factory(persona, version=None):
        return Api(persona, version)

    return factory
