"""PPO arithmetic against values computed by hand."""

import math

import pytest
import torch

from training.ppo_math import (
    KLController,
    RunningMoments,
    clipped_policy_loss,
    clipped_value_loss,
    ended_with_stop,
    entropy_from_logits,
    gae,
    kl_penalized_rewards,
    logprobs_from_logits,
    masked_whiten,
    response_mask,
    shape_scores,
)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_gae_on_a_three_step_trajectory():
    # δ2 = 2 - .5 = 1.5; δ1 = 0 + .9*.5 - 1 = -.55; δ0 = 1 + .9*1 - .5 = 1.4
    # A2 = 1.5; A1 = -.55 + .72*1.5 = .53; A0 = 1.4 + .72*.53 = 1.7816
    advantages, returns = gae(t([1, 0, 2]), t([0.5, 1.0, 0.5]), t([1, 1, 1]), gamma=0.9, lam=0.8)
    assert advantages.tolist()[0] == pytest.approx([1.7816, 0.53, 1.5])
    assert returns.tolist()[0] == pytest.approx([2.2816, 1.53, 2.0])


def test_gae_stops_at_the_mask():
    # the last token is padding: δ1 = 0 + .9*0 - 1 = -1; A0 = 1.4 + .72*(-1) = .68
    advantages, returns = gae(t([1, 0, 2]), t([0.5, 1.0, 0.5]), t([1, 1, 0]), gamma=0.9, lam=0.8)
    assert advantages.tolist()[0] == pytest.approx([0.68, -1.0, 0.0])
    assert returns.tolist()[0] == pytest.approx([1.18, 0.0, 0.0])


def test_gae_with_gamma_lam_one_is_reward_to_go_minus_value():
    advantages, _ = gae(t([1, 2, 3]), t([0, 0, 0]), t([1, 1, 1]), gamma=1.0, lam=1.0)
    assert advantages.tolist()[0] == pytest.approx([6, 5, 3])


def test_clipped_surrogate_clips_both_directions():
    new = t([math.log(1.5), math.log(0.5), math.log(1.1)])
    old = t([0.0, 0.0, 0.0])
    advantages, mask = t([1.0, -1.0, 1.0]), t([1, 1, 1])
    loss, clip_fraction, approx_kl = clipped_policy_loss(new, old, advantages, mask, 0.2)
    # per token max(-A r, -A clip(r)): max(-1.5, -1.2) = -1.2; max(.5, .8) = .8; -1.1 (inside)
    assert loss.item() == pytest.approx((-1.2 + 0.8 - 1.1) / 3)
    assert clip_fraction.item() == pytest.approx(2 / 3)
    expected_kl = 0.5 * (math.log(1.5) ** 2 + math.log(0.5) ** 2 + math.log(1.1) ** 2) / 3
    assert approx_kl.item() == pytest.approx(expected_kl)


def test_clipped_surrogate_gradient_is_zero_once_clipped():
    new = torch.tensor([math.log(1.5)], requires_grad=True)
    loss, _, _ = clipped_policy_loss(new, t(0.0), t(1.0), t(1.0), 0.2)
    loss.backward()
    assert new.grad.item() == 0.0


def test_kl_penalty_per_token_and_score_on_last_real_token():
    rewards, kl = kl_penalized_rewards(
        scores=torch.tensor([5.0]),
        logprobs=t([-1.0, -2.0, -3.0]),
        ref_logprobs=t([-1.5, -2.0, -2.0]),
        mask=t([1, 1, 0]),
        kl_coef=0.1,
    )
    assert kl.tolist()[0] == pytest.approx([0.5, 0.0, 0.0])
    assert rewards.tolist()[0] == pytest.approx([-0.05, 5.0, 0.0])


def test_value_clipping_takes_the_larger_loss():
    loss, fraction = clipped_value_loss(t(2.0), t(1.0), t(3.0), t(1.0), 0.2)
    assert loss.item() == pytest.approx(0.5 * (1.2 - 3.0) ** 2)  # clipped to 1.2: worse
    assert fraction.item() == 1.0
    loss, fraction = clipped_value_loss(t(1.1), t(1.0), t(3.0), t(1.0), 0.2)
    assert loss.item() == pytest.approx(0.5 * 1.9**2)  # inside the clip range
    assert fraction.item() == 0.0


def test_adaptive_kl_controller_moves_toward_target_and_fixed_stays():
    above = KLController(0.1, adaptive=True, target=6.0, horizon=10000)
    above.update(current_kl=12.0, n_steps=256)  # error clipped to +0.2
    assert above.value == pytest.approx(0.1 * (1 + 0.2 * 256 / 10000))
    below = KLController(0.1, adaptive=True, target=6.0, horizon=10000)
    below.update(current_kl=3.0, n_steps=256)  # error -0.5 clipped to -0.2
    assert below.value == pytest.approx(0.1 * (1 - 0.2 * 256 / 10000))
    fixed = KLController(0.1)
    fixed.update(100.0, 256)
    assert fixed.value == 0.1


def test_response_mask_keeps_through_first_eos():
    tokens = torch.tensor([[5, 2, 7, 2], [5, 6, 7, 8]])
    assert response_mask(tokens, eos_token_id=2).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_whiten_logprobs_and_entropy():
    values, mask = t([1.0, 2.0, 3.0, 100.0]), t([1, 1, 1, 0])
    whitened = masked_whiten(values, mask)
    assert whitened.tolist()[0][:3] == pytest.approx([-1.0, 0.0, 1.0], abs=1e-4)
    assert whitened[0, 3].item() == 0.0
    logits = torch.log(torch.tensor([[[0.25, 0.25, 0.5]]]))
    assert logprobs_from_logits(logits, torch.tensor([[2]])).item() == pytest.approx(math.log(0.5))
    entropy = -(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5))
    assert entropy_from_logits(logits).item() == pytest.approx(entropy)


def test_running_moments_equal_the_statistics_of_every_batch_seen():
    batches = [t(1.0, 2.0, 6.0), t(-3.0), t(0.5, 0.5, 4.0, 10.0)]
    moments = RunningMoments()
    for batch in batches:
        moments.update(batch)
    everything = torch.cat([b.flatten() for b in batches]).double()
    assert moments.count == 8
    assert moments.mean == pytest.approx(everything.mean().item())
    assert moments.std == pytest.approx(everything.std().item())  # unbiased


def test_scores_are_normalised_then_penalised_when_run_on_then_clipped():
    scores, ended = torch.tensor([1.0, 3.0, 5.0, 7.0]), torch.tensor([True, False, True, False])
    assert shape_scores(scores, ended).tolist() == [1.0, 3.0, 5.0, 7.0]  # every option off
    assert shape_scores(scores, ended, missing_eos_penalty=2.0).tolist() == [1, 1, 5, 5]
    assert shape_scores(scores, ended, clip_range=[2.0, 6.0]).tolist() == [2, 3, 5, 6]
    moments = RunningMoments()
    normalised = shape_scores(scores, ended, moments=moments)
    std = scores.std().item()  # mean 4, unbiased std 2.582
    assert normalised.tolist() == pytest.approx([(x - 4.0) / std for x in (1, 3, 5, 7)])
    assert moments.count == 4
    both = shape_scores(scores, ended, 1.0, RunningMoments(), [-1.0, 1.0])
    expected = [
        max(-1.0, min(1.0, (x - 4.0) / std - p))
        for x, p in zip((1, 3, 5, 7), (0, 1, 0, 1), strict=True)
    ]
    assert both.tolist() == pytest.approx(expected)
    # the statistics come from every process's batch when given
    gathered = RunningMoments()
    shape_scores(scores[:2], ended[:2], moments=gathered, all_scores=scores)
    assert gathered.count == 4 and gathered.mean == pytest.approx(4.0)


def test_ended_means_the_last_real_token_is_a_stop_token():
    tokens = torch.tensor([[5, 6, 2, 0], [5, 6, 7, 8], [5, 9, 8, 3], [2, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 0, 0]])
    assert ended_with_stop(tokens, mask, [2, 3]).tolist() == [True, False, True, True]
    assert ended_with_stop(tokens, mask, []).tolist() == [False] * 4
