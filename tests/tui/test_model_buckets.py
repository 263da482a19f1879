"""The dashboard model on the bucketed layout: events counted per bucket, the live feed's
liveness watched per bucket, the header naming the topology."""

from __future__ import annotations

from core import Event
from tui.cli import event_json, event_line
from tui.model import DashboardModel, event_text


def ev(bucket: int, seq: int, user: str = "u") -> Event:
    raw = f'{{"seq":{seq},"ts":1800000000.0,"kind":"login","username":"{user}{bucket}"}}'
    return Event(raw=raw, seq=seq, ts=1800000000.0, kind="login", username=f"{user}{bucket}",
                 data={"seq": seq, "ts": 1800000000.0, "kind": "login", "username": f"{user}{bucket}"},
                 bucket=bucket)


def test_the_same_seq_in_two_buckets_is_two_events_and_a_repeat_is_dropped() -> None:
    model = DashboardModel()
    assert model.add_event(ev(0, 1)) and model.add_event(ev(1, 1))
    assert not model.add_event(ev(0, 1))
    assert len(model.events) == 2


def test_a_quiet_bucket_whose_event_never_arrives_is_a_stall() -> None:
    model = DashboardModel(stall_after=5.0)
    model.poll_ok = True
    model.feed_status(True)
    busy, quiet = ev(0, 9), ev(1, 1)
    model.feed_delivered(busy.raw)
    # bucket 0 is busy and delivered; bucket 1's newest line never comes through
    assert not model.check_liveness((busy.raw, quiet.raw, None), 100.0)
    for t in (101.0, 103.0):
        newer = ev(0, int(t))
        model.feed_delivered(newer.raw)
        model.check_liveness((newer.raw, quiet.raw, None), t)
    assert not model.feed_stalled
    assert model.check_liveness((newer.raw, quiet.raw, None), 105.0)
    assert model.state == "stalled" and "bucket 1" in model.detail
    model.feed_delivered(quiet.raw)
    assert model.check_liveness((newer.raw, quiet.raw, None), 106.0)
    assert model.state == "connected"
    # the single-node form: one head
    assert not model.check_liveness(quiet.raw, 107.0)


def test_bucketed_events_show_their_bucket_with_the_seq() -> None:
    e = ev(12, 3)
    assert "#12.3" in event_text(e)
    assert "#12.3" in event_line(e)
    assert '"bucket":12' in event_json(e).replace(" ", "")


def test_header_names_the_topology_in_place_of_the_seed_address() -> None:
    model = DashboardModel(target="127.0.0.1:7000/0")
    model.poll_ok = True
    model.feed_ok = True
    assert "127.0.0.1:7000/0" in model.status_line()
    model.topology = "cluster 3 masters · 2 replicas · 1 down"
    line = model.status_line()
    assert "cluster 3 masters · 2 replicas · 1 down" in line and "127.0.0.1:7000" not in line
    model.topology = "sentinel mymaster master 127.0.0.1:6380\x1b[2J"
    assert "\x1b" not in model.status_line()  # Redis-derived text goes through the display path


def test_header_names_the_chosen_prefix_not_a_buckets_hash_tag() -> None:
    import fakeredis

    from core import SessionStore
    from tui.app import build_app

    store = SessionStore(fakeredis.FakeRedis(decode_responses=True), prefix="app1:", buckets=8)
    app = build_app(store, feed=False, rules=False)  # type: ignore[arg-type]
    label = app._describe_target()
    assert label.endswith(" prefix=app1:") and "{" not in label
