import pytest

from cloud.enrollment.broker_users import FakeBrokerUsers


@pytest.fixture(autouse=True)
def fake_broker(settings):
    """Hosts' broker users go to the fake driver: what it was asked is in FakeBrokerUsers."""
    settings.KUMO_BROKER_CREDENTIALS = "fake"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.KUMO_HOST_BROKER_URL = ""
    FakeBrokerUsers.reset()
    yield FakeBrokerUsers
    FakeBrokerUsers.reset()
