"""The whole renewal journey end to end through nginx, paying by WeChat Pay
with a special VAT invoice, and again paying by Alipay with an electronic
invoice (tests/e2e/journey.py says what each step proves)."""
from journey import Journey


def test_journey_wechat_special_invoice(suite):
    Journey(suite, channel="wechat", invoice="paper_special").run()


def test_journey_alipay_electronic_invoice(suite):
    Journey(suite, channel="alipay", invoice="e_normal").run()
