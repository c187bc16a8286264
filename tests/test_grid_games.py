"""Bridge, Aloha and Sensor follow the rules of environments.md sections 2-4."""

from __future__ import annotations

import numpy as np
import pytest

from og_marl_inspo.data.collect import RECIPES
from og_marl_inspo.envs import aloha, bridge, get_environment, sensor
from og_marl_inspo.envs.bridge import GOALS, STARTS, Bridge, rollout, transition
from og_marl_inspo.trainer import evaluation_record

STAY, UP, DOWN, RIGHT, LEFT = range(5)
OPTIMAL_RETURNS = {-1.2355, -1.2591, -1.2904}


# ---------------------------------------------------------------------- Bridge
def _bridge_at(positions, done=(False, False), t=0) -> Bridge:
    env = Bridge(seed=0)
    env._reset()
    env.positions, env.done, env.t = tuple(positions), tuple(done), t
    return env


def _play(env: Bridge, joint_actions):
    total = 0.0
    for joint in joint_actions:
        *_, reward, done = env._step(np.array(joint))
        total += reward
    return total, done


def test_bridge_start_observation_and_render():
    env = get_environment("inspo", "bridge", "bridge")
    obs, info = env.reset()
    expected = np.array([1, 2, 2, 5, 1, 3, 0, 0], np.float32)
    for agent in env.agents:
        np.testing.assert_array_equal(obs[agent], expected)
    np.testing.assert_array_equal(info["state"], expected)
    frame = env.render()
    assert frame.shape == (3, 6, 3) and frame.dtype == np.uint8
    assert tuple(frame[1, 2]) == (255, 0, 0) and tuple(frame[1, 3]) == (0, 0, 255)
    assert tuple(frame[2, 5]) == (128, 0, 0) and tuple(frame[0, 0]) == (0, 0, 128)
    assert tuple(frame[0, 2]) == (0, 0, 0) and tuple(frame[1, 0]) == (255, 255, 255)


def test_bridge_blocked_cells_and_edges_become_stay():
    # up from (1,2) and down from (1,3) hit '#'
    assert transition(STARTS, (False, False), (UP, DOWN)) == STARTS
    # off the grid: left from (1,0), up from (0,5)
    assert transition(((1, 0), (0, 5)), (False, False), (LEFT, UP)) == ((1, 0), (0, 5))
    # an agent blocked by a wall stays, so the other cannot enter its cell
    assert transition(((1, 2), (1, 1)), (False, False), (UP, RIGHT)) == ((1, 2), (1, 1))


def test_bridge_agent_0_wins_a_contested_cell():
    assert transition(((1, 1), (1, 3)), (False, False), (RIGHT, LEFT)) == ((1, 2), (1, 3))
    assert transition(((1, 0), (1, 2)), (False, False), (RIGHT, LEFT)) == ((1, 1), (1, 2))
    # even agent_1's goal (0,0): agent_0 is not kept out of it
    assert transition(((1, 0), (0, 1)), (False, False), (UP, LEFT))[0] == (0, 0)


def test_bridge_swaps_fail():
    assert transition(STARTS, (False, False), (RIGHT, LEFT)) == STARTS
    assert transition(((1, 4), (2, 4)), (False, False), (DOWN, UP)) == ((1, 4), (2, 4))


def test_bridge_moving_into_a_vacated_cell_succeeds():
    assert transition(STARTS, (False, False), (RIGHT, RIGHT)) == ((1, 3), (1, 4))
    assert transition(STARTS, (False, False), (LEFT, LEFT)) == ((1, 1), (1, 2))
    # but not when the other's move fails (it is blocked by '#')
    assert transition(STARTS, (False, False), (RIGHT, DOWN)) == STARTS


def test_bridge_done_agents_stay_and_are_ignored():
    # agent_0 done on its goal: its move becomes stay
    assert transition(((2, 5), (1, 4)), (True, False), (LEFT, STAY)) == ((2, 5), (1, 4))
    # agent_1 moves onto the done agent_0's cell... only its own goal or a free one; a done
    # other agent is ignored, so agent_1 may pass through agent_0's cell
    assert transition(((1, 1), (1, 2)), (True, False), (STAY, LEFT)) == ((1, 1), (1, 1))


def test_bridge_rewards_and_the_final_zero():
    env = _bridge_at(((2, 4), (0, 1)))
    *_, reward, done = env._step(np.array([RIGHT, STAY]))  # agent_0 arrives, agent_1 waits
    assert not done and env.done == (True, False)
    assert reward == pytest.approx(0.5 * (-0.1 * 1.0))
    *_, reward, done = env._step(np.array([STAY, LEFT]))  # agent_1 arrives: all done
    assert done and reward == 0.0
    env = _bridge_at(((1, 2), (0, 1)))
    *_, reward, _ = env._step(np.array([DOWN, DOWN]))  # Euclidean distances, both not done
    assert reward == pytest.approx(0.5 * -0.1 * (np.hypot(1, 3) + np.hypot(1, 1)))


def test_bridge_time_limit_is_50():
    env = get_environment("cpa", "bridge", "bridge")
    env.reset()
    total, steps, done = 0.0, 0, False
    while not done:
        _, rewards, terminals, truncations, _ = env.step({"agent_0": STAY, "agent_1": STAY})
        done = bool(terminals["agent_0"])
        assert not truncations["agent_0"]
        total += float(rewards["agent_0"])
        steps += 1
    assert steps == 50
    assert float(rewards["agent_0"]) == 0.0  # the time-limit end loses its last penalty
    assert total == pytest.approx(49 * 0.5 * -0.1 * 2 * np.sqrt(10), abs=1e-4)


@pytest.mark.parametrize("script", [
    # agent_1 yields: steps right, then up, back down, and follows agent_0's trail home
    [(3, 3), (3, 1), (2, 2), (3, 4), (0, 4), (0, 4), (0, 1), (0, 4)],
    # agent_0 yields: steps left, then down, back up, and crosses after agent_1
    [(4, 4), (2, 4), (1, 1), (3, 4), (3, 0), (3, 0), (2, 0), (3, 0)],
], ids=["agent_1_yields", "agent_0_yields"])
def test_bridge_scripted_optimal_return(script):
    env = _bridge_at(STARTS)
    total, done = _play(env, script)
    assert done and env.positions == GOALS
    assert total == pytest.approx(-1.2355, abs=1e-4)


def test_bridge_optimal_policy_cost_to_go():
    assert bridge.arrival_cost_to_go()[STARTS] == 12
    assert sorted(bridge.optimal_actions(STARTS)) == [(RIGHT, RIGHT), (LEFT, LEFT)]


def test_bridge_optimal_dataset_returns():
    env = get_environment("inspo", "bridge", "bridge", seed=0)
    recipe = RECIPES[("inspo", "bridge", "bridge")]["Optimal"]
    episodes = recipe.build(env, np.random.default_rng(0))
    assert len(episodes) == 500
    returns = np.array([ep["rewards"].astype(np.float64).sum() for ep in episodes])
    assert all(len(ep["actions"]) == 8 for ep in episodes)
    assert set(np.round(returns, 4).tolist()) == OPTIMAL_RETURNS
    assert returns.mean() == pytest.approx(-1.2616, abs=0.005)
    first = [tuple(ep["actions"][0]) for ep in episodes]
    share = first.count((RIGHT, RIGHT)) / len(first)
    assert first.count((RIGHT, RIGHT)) + first.count((LEFT, LEFT)) == len(first)
    assert abs(share - 0.5) < 0.07
    assert all(ep["observations"].shape == (8, 2, 8) for ep in episodes)


def test_bridge_recipes_mix_optimal_and_random():
    env = Bridge(seed=0)
    episodes = bridge.optimal_and_random(3, 20)(env, np.random.default_rng(1))
    lengths = [len(ep["actions"]) for ep in episodes]
    assert lengths[:3] == [8, 8, 8] and np.mean(lengths[3:]) > 30
    assert set(RECIPES[("cpa", "bridge", "bridge")]) == {"Good", "Medium", "Poor"}
    assert set(RECIPES[("inspo", "bridge", "bridge")]) == {"Optimal", "Mixed"}


# ----------------------------------------------------------------------- Aloha
def test_aloha_collision_success_and_empty_backlog():
    backlog = np.array([1, 1, 0, 2, 1, 0, 0, 0, 0, 3])
    actions = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    # 0 and 1 are neighbours: both collide; 3 is alone: success
    after, reward = aloha.channel(backlog, actions, 1.0)
    np.testing.assert_array_equal(after, [1, 1, 0, 1, 1, 0, 0, 0, 0, 3])
    assert reward == -10 - 10 + 1
    # an empty transmitter earns nothing but still blocks its neighbour
    after, reward = aloha.channel(np.array([0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
                                  np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0]), 1.0)
    assert reward == -10 and after[1] == 1
    # the success reward is a parameter; edge 4-5 is a neighbourhood
    _, reward = aloha.channel(np.ones(10, int), np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0]), 0.1)
    assert reward == -20
    _, reward = aloha.channel(np.ones(10, int), np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0]), 0.1)
    assert reward == pytest.approx(0.5)


def test_aloha_backlog_grows_and_is_capped():
    env = get_environment("cpa", "aloha", "aloha", seed=1)
    obs, info = env.reset()
    assert all(obs[a].tolist() == [1.0] for a in env.agents)
    for step in range(20):
        _, rewards, terminals, _, info = env.step({a: 0 for a in env.agents})
        assert float(rewards["agent_0"]) == 0.0
        assert info["state"].max() <= 5 and info["state"].min() >= 1
        assert bool(terminals["agent_0"]) == (step == 19)
    assert info["state"].max() == 5  # 20 steps of arrivals at 0.6 fill some queue


def test_aloha_experts_are_collision_free():
    assert aloha.expert_actions(np.ones(10), True).tolist() == [1, 0] * 5
    assert aloha.expert_actions(np.ones(10), False).tolist() == [0, 1] * 5
    rng = np.random.default_rng(0)
    for _ in range(200):
        backlog = rng.integers(0, 6, size=10)
        for even_first in (True, False):
            actions = aloha.expert_actions(backlog, even_first)
            assert not np.any(actions & (actions @ aloha.ADJACENCY))  # independent set
            assert np.all(backlog[actions == 1] > 0)
            _, reward = aloha.channel(backlog, actions, 1.0)
            assert reward == actions.sum()
    env = aloha.Aloha(seed=3)
    returns = [rollout(env, aloha.expert_e, rng)["rewards"].sum() for _ in range(20)]
    assert np.mean(returns) == pytest.approx(86.8, abs=3.0)


def test_aloha_batch_matches_copies():
    env = aloha.Aloha(seed=0)
    batch = env.batch(3, seed=7)
    copies = [env.copy(7 + k) for k in range(3)]
    batch.reset()
    for c in copies:
        c._reset()
    rng = np.random.default_rng(0)
    for _ in range(20):
        joint = rng.integers(0, 2, size=(3, 10))
        _, _, state, rewards, done = batch.step(joint, np.ones(3, bool))
        singles = [c._step(j) for c, j in zip(copies, joint)]
        np.testing.assert_array_equal(state, np.stack([s[2] for s in singles]))
        np.testing.assert_allclose(rewards, [s[3] for s in singles])
    assert done.all()


def test_aloha_evaluation_counts_deliveries_collisions_and_waits():
    batch = aloha.Aloha(seed=0).batch(3, seed=5)
    _, _, state = batch.reset()
    returns, waits = np.zeros(3), 0
    for step in range(20):
        backlog = state.astype(np.int64)
        joint = np.stack([aloha.expert_actions(backlog[0], True), np.ones(10, np.int64),
                          np.zeros(10, np.int64)])  # expert, everyone transmits, nobody does
        active = np.array([True, True, step < 10])  # the third episode stops counting at step 10
        waits += int((backlog[2] > 0).sum()) if step < 10 else 0
        _, _, state, rewards, _ = batch.step(joint, active)
        returns += rewards
    stats = batch.stats()
    assert stats["collisions"][0] == 0 and stats["packets_delivered"][0] == returns[0] > 50
    assert stats["packets_delivered"][1] == 0 and -10 * stats["collisions"][1] == returns[1] < 0
    assert stats["waits_with_packet"][1] == 0 and stats["waits_with_packet"][2] == waits >= 10

    class Silent:  # never transmits: every packet waits, nothing is delivered
        last_marginals = None

        def reset(self, num_episodes):
            pass

        def act(self, obs, legals, rng, state=None):
            return np.zeros(obs.shape[:2], np.int32)

    record = evaluation_record(Silent(), aloha.Aloha(seed=0), step=0, episodes=4, seed=0)
    assert record["packets_delivered"] == 0 and record["collisions"] == 0
    assert record["waits_with_packet"] == 20 * 10  # backlogs start at 1 and only grow


# ---------------------------------------------------------------------- Sensor
def _sensor_with_targets(targets) -> sensor.Sensor:
    env = sensor.Sensor(seed=0)
    env._reset()
    env.targets = [tuple(t) for t in targets]
    return env


def _scan(sensor_index: int, cell) -> int:
    sr, sc = sensor.SENSOR_CELLS[sensor_index]
    return sensor.SCAN_OFFSETS.index((cell[1] - sc, cell[0] - sr))


@pytest.mark.parametrize("scanners, expected", [(0, 0.0), (1, -1.0), (2, 3.0 - 2), (3, 4.5 - 3),
                                                (4, 6.0 - 4)])
def test_sensor_reward_tiers(scanners, expected):
    cell = (1, 1)  # adjacent to sensors 0, 1, 5, 6
    joint = np.full(15, sensor.IDLE)
    for k in [0, 1, 5, 6][:scanners]:
        joint[k] = _scan(k, cell)
    assert sensor.team_reward([cell, (3, 7), (4, 3)], joint) == expected
    env = _sensor_with_targets([cell, (3, 7), (4, 3)])
    assert env._step(joint)[3] == expected


def test_sensor_empty_scans_cost_and_targets_add_up():
    joint = np.full(15, sensor.IDLE)
    joint[0] = _scan(0, (1, 0))  # nothing there
    joint[[1, 2]] = [_scan(1, (1, 3)), _scan(2, (1, 3))]
    joint[[3, 4]] = [_scan(3, (0, 7)), _scan(4, (0, 7))]
    assert sensor.team_reward([(1, 3), (0, 7), (3, 3)], joint) == -5 + 3 + 3


def test_sensor_scan_legality_at_corners_and_edges():
    env = get_environment("cpa", "sensor", "sensor", seed=0)
    _, info = env.reset()
    counts = [int(info["legals"][a][:8].sum()) for a in env.agents]
    assert counts[0] == counts[4] == counts[10] == counts[14] == 3  # corners
    assert counts[1] == counts[2] == counts[3] == counts[11] == 5  # top and bottom edges
    assert counts[5] == counts[9] == 5  # left and right edges
    assert counts[6] == counts[7] == counts[8] == 8  # interior
    assert all(info["legals"][a][8] == 1.0 for a in env.agents)
    assert info["legals"]["agent_0"].tolist() == [1, 0, 1, 0, 0, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="agent_0 chose illegal action 1"):
        env.step({a: (1 if a == "agent_0" else 8) for a in env.agents})


def test_sensor_observation_window_and_target_motion():
    env = _sensor_with_targets([(1, 1), (0, 1), (3, 8)])
    obs, _, state = env._observe()
    assert obs[0].tolist() == [-1, -1, -1, -1, 0, 1, -1, 0, 1, 0, 0]
    assert obs[14][:9].tolist() == [0, 1, -1, 0, 0, -1, -1, -1, -1] and obs[14][9:].tolist() == [4, 8]
    assert state.shape == (165,) and np.array_equal(state[:11], obs[0])
    env._reset()
    for _ in range(50):
        before = list(env.targets)
        env._step(np.full(15, sensor.IDLE))
        assert len(set(env.targets)) == 3 and not set(env.targets) & sensor.SENSOR_SET
        for old, new in zip(before, env.targets):
            assert new != old and max(abs(new[0] - old[0]), abs(new[1] - old[1])) <= 2


def test_sensor_experts_are_per_step_optimal():
    targets = [(1, 1), (1, 3), (3, 7)]
    low, high = sensor.expert_actions(targets, "L"), sensor.expert_actions(targets, "H")
    # (1,1) and (1,3) share sensors 1 and 6: together they gain at most 3, (3,7) gains 2
    best = max(sensor.team_reward(targets, a) for a in (low, high))
    assert sensor.team_reward(targets, low) == sensor.team_reward(targets, high) == best
    assert best == pytest.approx(2.0 + 1.0 + 2.0)
    assert not np.array_equal(low, high)  # the tie between the two shared sensors is broken apart
    # L: smallest scanned-cell vector with idle = 99, so sensors 1 and 6 join (1,1) = cell 10;
    # H: largest with idle = -1, so they join (1,3) = cell 12
    assert sensor.expert_assignment(targets, "L").tolist() == [
        10, 10, 12, -1, -1, 10, 10, 12, 34, 34, -1, -1, -1, 34, 34]
    assert sensor.expert_assignment(targets, "H").tolist() == [
        10, 12, 12, -1, -1, 10, 12, 12, 34, 34, -1, -1, -1, 34, 34]
    # a tie between scanning and idling: (2,1) by sensors 5, 6 or (3,2) by sensors 6, 11;
    # L prefers sensor 5 busy (19 < 99), sensor 6 on cell 19 rather than 29
    assert sensor.expert_assignment([(2, 1), (4, 7), (3, 2)], "L").tolist() == [
        -1, -1, -1, -1, -1, 19, 19, -1, -1, -1, -1, -1, -1, 43, 43]
    env = sensor.Sensor(seed=4)
    rng = np.random.default_rng(0)
    returns = [rollout(env, sensor.expert_l, rng)["rewards"].sum() for _ in range(20)]
    assert np.mean(returns) == pytest.approx(30.8, abs=2.0)


def test_grid_environments_use_their_own_generator():
    np.random.seed(0)
    a = [get_environment("cpa", "sensor", "sensor", seed=5)._reset()[2] for _ in range(2)]
    np.random.seed(1)
    b = get_environment("cpa", "sensor", "sensor", seed=5)._reset()[2]
    np.testing.assert_array_equal(a[0], a[1])
    np.testing.assert_array_equal(a[0], b)
