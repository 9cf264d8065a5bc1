import numpy as np
import pytest

from tools.replay import SequenceReplay


def fill(replay, steps, stream=0, episode=10, start=0):
    for t in range(start, start + steps):
        replay.add({"image": np.full((8, 8, 3), t % 256, np.uint8), "action": np.full(2, t, np.float32),
                    "reward": np.float32(t), "is_first": np.bool_(t % episode == 0)}, stream=stream)


def test_samples_have_the_right_shapes_and_consecutive_steps(tmp_path):
    replay = SequenceReplay(tmp_path, capacity=100, seed=0)
    fill(replay, 60)
    batch = replay.sample(4, 5)
    assert batch["image"].shape == (4, 5, 8, 8, 3) and batch["image"].dtype == np.uint8
    assert batch["action"].shape == (4, 5, 2) and batch["reward"].shape == (4, 5)
    assert np.all(np.diff(batch["reward"], axis=1) == 1)


def test_fifo_capacity_drops_the_oldest_steps(tmp_path):
    replay = SequenceReplay(tmp_path, capacity=50, seed=0)
    fill(replay, 120)
    assert len(replay) == 50
    rewards = replay.sample(64, 10)["reward"]
    assert rewards.min() >= 70 and rewards.max() <= 119
    assert np.all(np.diff(rewards, axis=1) == 1)  # no sequence runs across the ring's write head


def test_survives_a_reload_from_disk(tmp_path):
    replay = SequenceReplay(tmp_path, capacity=50, num_streams=2, seed=0)
    fill(replay, 30, stream=0)
    fill(replay, 20, stream=1, start=1000)
    replay.flush()
    del replay
    reloaded = SequenceReplay(tmp_path, capacity=50, num_streams=2, seed=0)
    assert len(reloaded) == 25 + 20
    fill(reloaded, 5, stream=1, start=1020)
    assert reloaded.written == [30, 25]
    rewards = reloaded.sample(200, 5)["reward"]
    assert set(np.unique(rewards)) <= set(range(5, 30)) | set(range(1000, 1025))
    with pytest.raises(ValueError, match="capacity"):
        SequenceReplay(tmp_path, capacity=80, num_streams=2)


def test_within_episode_sequences_never_cross_a_reset(tmp_path):
    replay = SequenceReplay(tmp_path, capacity=200, seed=0, within_episode=True)
    fill(replay, 200, episode=10)
    first = replay.sample(256, 10)["is_first"]
    assert not first[:, 1:].any()
    with pytest.raises(ValueError, match="inside one episode"):
        replay.sample(2, 11)


def test_sampling_an_empty_replay_is_a_clear_error(tmp_path):
    replay = SequenceReplay(tmp_path, capacity=10)
    with pytest.raises(ValueError, match="no sequence of length 5"):
        replay.sample(1, 5)
