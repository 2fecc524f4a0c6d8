"""Break each behaviour a test claims to guard, in a throwaway git worktree, and check that the test fails.

Issue 21's rule: a test must fail when the behaviour it names is broken. Each mutation below replaces one line of
the engine (removed images no longer blurred, the report's CSP gone, errors that stop naming the file, ...) and
runs the tests that must catch it; the output says FAILS (good) or "passes (!)" for each. Real-data tests run when
../shared/real is beside the repository. About 10 minutes on 2 cores.
Usage: python -m bench.mutation_check [--only TEXT]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# A stand-in for the k-means assignment that puts every image in a random cluster (the real one is renamed).
RANDOM_CLUSTERS = (
    "def cluster_assignments(*args, **kwargs):\n"
    "    import numpy as _np\n"
    "    clusters = kwargs.get('clusters', args[1] if len(args) > 1 else 1)\n"
    "    return _np.random.default_rng(0).integers(0, clusters, len(args[0]))\n\n\n"
    "def _unused_cluster_assignments(\n"
)
MUTATIONS = [
    (
        "removed images are no longer blurred",
        "analysis/images.py",
        "    small = thumbnail(image, side)\n",
        "    return image.copy()\n    small = thumbnail(image, side)\n",
        [
            "tests/test_browser.py::test_removals_page_blurs_until_revealed_and_records_a_verdict",
            "tests/test_report_and_gates.py::test_report_blurs_a_removed_image_and_shows_a_kept_one_sharp",
        ],
    ),
    (
        "the report loses its Content-Security-Policy",
        "analysis/report.py",
        "<meta http-equiv='Content-Security-Policy'",
        "<meta http-equiv='X-Nothing'",
        [
            "tests/test_report_and_gates.py::test_report_content_security_policy_blocks_outside_resources",
            "tests/test_report_and_gates.py::test_report_policy_stops_an_injected_outside_image_in_a_real_browser",
        ],
    ),
    (
        "the report's removal count is off by one",
        "analysis/removals/contract.py",
        'lines = [f"{summary.n_removed:,} of',
        'lines = [f"{summary.n_removed + 1:,} of',
        ["tests/test_report_and_gates.py::test_report_states_the_figures_the_cli_measures"],
    ),
    (
        "captions are no longer case-folded (non-ASCII-lower spellings kept as written)",
        "analysis/captions.py",
        "[w.casefold() for w in spellings",
        "[w for w in spellings",
        [
            # (the COCO counts test cannot see this one: no COCO-mini caption capitalises man/woman/person)
            "tests/test_real_data.py::test_caption_only_laion_audit",
        ],
    ),
    (
        "errors stop naming the file at fault",
        "analysis/errors.py",
        'parts = [f"{path}: {message}" if path is not None else message]',
        "parts = [message]",
        ["tests/test_robustness.py::test_bad_manifest_or_config_gets_one_clear_message"],
    ),
    (
        "cosine dedup threshold 0.3 (every image in one group)",
        "analysis/dedup/compute.py",
        "def default_threshold(embedder: str) -> float:\n",
        "def default_threshold(embedder: str) -> float:\n    return 0.3\n",
        ["tests/test_dedup.py::test_cosine_dedup_never_merges_two_planted_families"],
    ),
    (
        "clustered search assigns images to random clusters (exact search with K = 1 would still pass)",
        "analysis/dedup/compute.py",
        "def cluster_assignments(\n",
        RANDOM_CLUSTERS,
        ["tests/test_cli.py::test_dedup_json_and_keep_list"],
    ),
    (
        "shards of different dimensions are concatenated without a check",
        "analysis/embedders/precomputed.py",
        "if dim is not None and array.shape[1] != dim:",
        "if False:",
        ["tests/test_embeddings.py::test_shards_of_different_dimensions_are_named"],
    ),
    (
        "an adjudicator's verdict is not final",
        "analysis/verdicts/decisions.py",
        "        if (kind, item) in adjudicated:",
        "        if False:",
        [
            "tests/test_review_process.py::test_two_reviewers_who_disagree_keep_both_votes_until_an_adjudicator_decides",
            "tests/test_review_process.py::test_cli_double_review_disagreement_and_adjudication",
            "tests/test_browser.py::test_an_adjudicator_resolves_a_disagreement_in_the_browser",
        ],
    ),
    (
        "a second reviewer's verdict replaces the first (latest wins)",
        "analysis/verdicts/decisions.py",
        'drop_duplicates(["kind", "item_id", "reviewer"], keep="last")',
        'drop_duplicates(["kind", "item_id"], keep="last")',
        ["tests/test_review_process.py::test_two_reviewers_who_disagree_keep_both_votes_until_an_adjudicator_decides"],
    ),
    (
        "kappa is not corrected for chance",
        "analysis/review/agreement.py",
        "    expected = (a.mean(axis=1) * b.mean(axis=1)).sum(axis=1)\n",
        "    expected = (a.mean(axis=1) * b.mean(axis=1)).sum(axis=1) * 0\n",
        ["tests/test_review_process.py::test_cohen_kappa_equals_scikit_learn_and_percent_agreement_is_counted"],
    ),
    (
        "reveals are not logged",
        "dashboard/review.py",
        "            store.record_reveals(reviewer.name, granted, page)\n",
        "            pass\n",
        [
            "tests/test_dashboard_pages.py::test_reveals_pause_at_the_hourly_cap",
            "tests/test_browser.py::test_removals_page_blurs_until_revealed_and_records_a_verdict",
        ],
    ),
    (
        "the hourly reveal cap is ignored",
        "dashboard/review.py",
        "granted = fresh if seen.remaining is None else fresh[: seen.remaining]",
        "granted = fresh",
        ["tests/test_dashboard_pages.py::test_reveals_pause_at_the_hourly_cap"],
    ),
    (
        "an import writes the good lines of a file with bad ones",
        "analysis/review/imports.py",
        "    if errors:\n        raise AuditInputError(_joined(errors), path=path",
        "    if False:\n        raise AuditInputError(_joined(errors), path=path",
        ["tests/test_review_process.py::test_import_validates_every_line_and_imports_once"],
    ),
    (
        "the queue's interval claims four times the items it has",
        "analysis/stats.py",
        "    x = estimate * effective\n",
        "    effective = total * 4\n    x = estimate * effective\n",
        [
            "tests/test_review_process.py::test_stratified_queue_interval_covers_the_truth_where_a_sorted_gallery_is_biased"
        ],
    ),
    (
        "a filter on a computed score removes the images that could not be scored",
        "analysis/filter_spec.py",
        "    return score_filter.removes(np.where(scored, values, 0.0)) & scored",
        "    return score_filter.removes(np.where(scored, values, 0.0))",
        ["tests/test_filter_builder.py::test_a_filter_on_a_computed_score_never_removes_an_unscored_image"],
    ),
    (
        "the score cache is never read (every run scores every image again)",
        "analysis/scoring/compute.py",
        '    known = set(cached["key"])',
        "    known: set = set()",
        [
            "tests/test_filter_builder.py::test_open_nsfw_scores_are_probabilities_cached_and_recorded",
            "tests/test_real_data.py::test_open_nsfw_scores_real_photos_once",
        ],
    ),
    (
        "a label batch with a bad label stores its good labels",
        "analysis/filters/definition.py",
        "    if problems:",
        "    if problems and not parsed:",
        ["tests/test_filter_builder.py::test_a_bad_label_stores_none_of_the_batch"],
    ),
    (
        "the random slice is trained on (its precision and recall are no longer a test set's)",
        "analysis/filters/compute.py",
        "        return rows[~in_slice], truth[~in_slice]",
        "        return rows, truth",
        ["tests/test_filter_builder.py::test_the_random_slice_is_held_out_of_training"],
    ),
    (
        "the filter's threshold is set on the random slice it is measured on",
        "analysis/filters/compute.py",
        "    threshold = measure.threshold_for_recall(out_of_fold[truth], target_recall)",
        "    threshold = measure.threshold_for_recall("
        "scores[slice_rows][slice_truth] if slice_truth.sum() >= 10 else out_of_fold[truth], target_recall)",
        ["tests/test_filter_builder.py::test_the_threshold_is_set_without_the_random_slices_labels"],
    ),
    (
        "the random slice's precision interval is a placeholder [0, 1]",
        "analysis/filters/measure.py",
        "        precision_ci95=proportion_interval(true_flagged, n_flagged) if n_flagged else None,",
        "        precision_ci95=(0.0, 1.0) if n_flagged else None,",
        ["tests/test_filter_builder.py::test_slice_estimates_are_clopper_pearson_intervals_on_the_slice"],
    ),
    (
        "a recall from a handful of slice positives is judged",
        "analysis/filters/measure.py",
        "        return not self.fitted_before_trials_were_counted and judgeable(self.n_slice_positive)",
        "        return True",
        ["tests/test_filter_builder.py::test_a_slice_estimate_on_fewer_than_30_trials_is_marked_too_few_to_judge"],
    ),
    (
        "a fit saved before its slice trials were counted reads as judged or as '0 of 0'",
        "analysis/filters/measure.py",
        "        return self.n_slice_flagged is None and self.precision is not None",
        "        return False",
        ["tests/test_filter_builder.py::test_a_fit_saved_before_trials_were_counted_asks_to_be_fitted_again"],
    ),
    (
        "the dashboard prints its address before the first views are computed",
        "dashboard/warm.py",
        "        warm_caches(directory, log)\n",
        "        ready()\n        warm_caches(directory, log)\n",
        [
            "tests/test_browser.py::"
            "test_when_the_address_is_printed_the_duplicates_page_shows_its_groups_without_a_spinner"
        ],
    ),
    (
        "caption contamination matches a template filled with other content",
        "analysis/contamination/captions.py",
        "                return 0.0\n",
        "                continue\n",
        ["tests/test_caption_contamination.py::test_a_template_filled_with_other_content_is_not_a_copy"],
    ),
    (
        "contamination counts a second photograph of the same scene as a copy of an evaluation image",
        "analysis/contamination/compute.py",
        'frame["counted"] = verified & np.isin(frame["tier"].astype(str), list(search.acted_tiers))',
        'frame["counted"] = verified',
        ["tests/test_contamination.py::test_a_verified_second_shot_of_the_same_scene_is_shown_but_not_counted"],
    ),
    (
        "the contamination gate counts copies the filters removed",
        "analysis/contamination/contract.py",
        "float(len(one.contaminated_ids(kept_only=True)))",
        "float(len(one.contaminated_ids()))",
        ["tests/test_contamination.py::test_the_gate_judges_what_the_filters_kept"],
    ),
    (
        "contamination counts an evaluation item once per training copy",
        "analysis/contamination/compute.py",
        "        return self.image_ids(kept_only) | self.caption_ids(kept_only)",
        "        return set(self._counted(kept_only)['train_id']) | self.caption_ids(kept_only)",
        ["tests/test_contamination.py::test_an_item_counts_once_however_many_training_copies_it_has"],
    ),
    (
        "the near-copy caption threshold is not the one chosen on Conceptual Captions",
        "analysis/contamination/captions.py",
        "NEAR_THRESHOLD = 0.9",
        "NEAR_THRESHOLD = 0.7",
        ["tests/test_caption_contamination.py::test_the_default_threshold_is_the_one_chosen_on_real_captions"],
    ),
    (
        "the classifier's default C is not the one chosen on the tuning half of Caltech-101",
        "analysis/filters/model.py",
        "DEFAULT_C = 0.01",
        "DEFAULT_C = 0.05",
        ["tests/test_filter_builder.py::test_the_classifiers_default_c_is_the_one_chosen_on_real_photos"],
    ),
    (
        "Lowe's ratio test lets ambiguous matches through",
        "analysis/copies/local_features.py",
        "    passed = squared_first < RATIO * RATIO * squared_second",
        "    passed = squared_first <= squared_second",
        ["tests/test_copies.py::test_a_keypoint_whose_two_nearest_are_about_as_close_is_not_matched"],
    ),
    (
        "a keypoint matched twice keeps its first query, not its closest",
        "analysis/copies/local_features.py",
        "    by_target = np.lexsort((queries, distance[queries], targets))",
        "    by_target = np.lexsort((distance[queries], queries, targets))",
        ["tests/test_copies.py::test_two_keypoints_matching_one_keep_only_the_closer_in_the_place_of_the_first"],
    ),
    (
        "matches reach RANSAC in the order of their targets, not as first reached",
        "analysis/copies/local_features.py",
        '    order = np.argsort(first_reached, kind="stable")',
        "    order = np.arange(len(unique_targets))",
        ["tests/test_copies.py::test_two_keypoints_matching_one_keep_only_the_closer_in_the_place_of_the_first"],
    ),
    (
        "the mirror is matched even after a strong direct match",
        "analysis/copies/local_features.py",
        "    if inliers < STRONG_DIRECT and len(mirror_a) > inliers:",
        "    if len(mirror_a) > inliers:",
        ["tests/test_copies.py::test_the_mirror_is_matched_only_where_it_could_beat_the_direct_match"],
    ),
    (
        "the mirror is never matched",
        "analysis/copies/local_features.py",
        "    if inliers < STRONG_DIRECT and len(mirror_a) > inliers:",
        "    if False:",
        [
            "tests/test_copies.py::test_a_mirrored_crop_verifies_against_its_original_and_says_it_was_mirrored",
            "tests/test_copies.py::test_the_mirror_is_matched_only_where_it_could_beat_the_direct_match",
        ],
    ),
    (
        "verification runs on the client even when a cluster is given",
        "analysis/copies/feature_store.py",
        "    if offload is not None:\n        done = offload.map(_verify_chunk",
        "    if False:\n        done = offload.map(_verify_chunk",
        ["tests/test_distributed.py::test_dedup_split_into_tasks_equals_one_process_in_whole"],
    ),
    (
        "byte-identical images are verified once per copy",
        "analysis/copies/feature_store.py",
        "[i if f is None else first.setdefault(f, i) for i, f in enumerate(features)]",
        "[i for i, f in enumerate(features)]",
        ["tests/test_feature_store.py::test_byte_identical_images_are_extracted_once_and_verified_once"],
    ),
    (
        "a resumed feature store extracts every image again",
        "analysis/copies/feature_store.py",
        "    stored = read_store(directory)\n    todo",
        "    stored: dict = {}\n    todo",
        ["tests/test_feature_store.py::test_a_store_killed_mid_chunk_resumes_to_the_same_features"],
    ),
    (
        "the evidence card extracts its features another way than verification",
        "analysis/copies/evidence.py",
        "    features_a, features_b = extract_file(images_root, image_a), extract_file(images_root, image_b)",
        "    from analysis.copies.local_features import extract\n\n"
        "    features_a, features_b = extract(first.image), extract(second.image)",
        ["tests/test_copies.py::test_the_evidence_drawn_is_the_match_that_was_cached"],
    ),
    (
        "verification workers match on as many BLAS threads as there are cores",
        "analysis/copies/feature_store.py",
        '    with threadpool_limits(limits=1, user_api="blas"):',
        '    with threadpool_limits(limits=None, user_api="blas"):',
        ["tests/test_copies.py::test_a_verification_worker_matches_on_one_blas_thread"],
    ),
    (
        "SSIM is aligned without undoing the mirror",
        "analysis/copies/aligned_similarity.py",
        "    if mirrored:",
        "    if False:",
        ["tests/test_copies.py::test_ssim_of_a_mirrored_crop_is_taken_after_undoing_the_mirror_and_the_crop"],
    ),
    (
        "SSIM is taken over the whole sample, not the part the training image covers",
        "analysis/copies/aligned_similarity.py",
        "    return float(local_ssim(target.pixels, moved)[inside].mean())",
        "    return float(local_ssim(target.pixels, moved).mean())",
        ["tests/test_copies.py::test_ssim_of_a_photo_pasted_onto_another_covers_the_pasted_part_only"],
    ),
    (
        "the rate on ordinary photos ignores a filter that removes below its threshold",
        "analysis/scoring/ordinary_rates.py",
        '    flagged = int((scores >= threshold).sum() if direction == ">=" else (scores < threshold).sum())',
        "    flagged = int((scores >= threshold).sum())",
        [
            "tests/test_filter_builder.py::"
            "test_the_rate_on_ordinary_photos_is_counted_at_the_filters_threshold_and_direction"
        ],
    ),
    (
        "a model pass returns its freed buffers to the kernel again (glibc's defaults)",
        "analysis/embedders/base.py",
        "    kept_mapped = libc.mallopt(M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD)",
        "    kept_mapped = 0",
        ["tests/test_embeddings.py::test_a_model_pass_reuses_its_freed_buffers_instead_of_faulting_them_in_again"],
    ),
    (
        "prepare's default batch is large enough for its activations to be mapped afresh every pass",
        "analysis/embeddings.py",
        "DEFAULT_BATCH_SIZE = 4",
        "DEFAULT_BATCH_SIZE = 8",
        ["tests/test_embeddings.py::test_a_model_pass_reuses_its_freed_buffers_instead_of_faulting_them_in_again"],
    ),
    (
        "a removed item counts as matched by any kept item, however far its classifier score",
        "analysis/bias/reweight.py",
        "    return float((nearest > caliper).mean())",
        "    return float((nearest > 1.5 * caliper).mean())",
        ["tests/test_bias.py::test_a_removed_item_has_a_kept_neighbour_only_within_the_caliper"],
    ),
    (
        "reweighting is called repairable when most removed items have no kept neighbour",
        "analysis/bias/reweight.py",
        "        return self.removed_without_kept_neighbour <= MAX_WITHOUT_KEPT_NEIGHBOUR",
        "        return self.removed_without_kept_neighbour <= 1.0",
        ["tests/test_bias.py::test_a_filter_that_removes_every_caption_with_a_word_is_reported_as_not_repairable"],
    ),
    (
        "several captions per image are joined in a different order or keep only the first",
        "analysis/manifests.py",
        "            lambda texts: JOINED_CAPTIONS_SEPARATOR.join(str(t) for t in texts if pd.notna(t))",
        "            lambda texts: str(texts.iloc[0])",
        ["tests/test_manifests.py::test_captions_join_makes_one_caption_of_all_of_an_images_captions"],
    ),
    (
        "the filter builder asks about the images its model is most sure of",
        "analysis/filters/rounds.py",
        '        order = pool[np.argsort(np.abs(scores[pool] - 0.5), kind="stable")]',
        '        order = pool[np.argsort(-np.abs(scores[pool] - 0.5), kind="stable")]',
        ["tests/test_filter_builder.py::test_a_round_asks_about_the_images_the_model_is_least_sure_of"],
    ),
    (
        "a regurgitation rate is judged on any number of samples",
        "analysis/regurgitation/compute.py",
        "        return judgeable(self.n_measured)",
        "        return True",
        ["tests/test_regurgitation.py::test_a_regurgitation_rate_on_too_few_measured_samples_is_not_judged"],
    ),
    (
        "a pair verifies on inliers alone, wherever they lie (the coverage rule dropped)",
        "analysis/copies/candidates.py",
        "    return (np.asarray(inliers) >= inlier_threshold) & (np.asarray(coverage) >= MIN_COVERAGE)",
        "    return np.asarray(inliers) >= inlier_threshold",
        ["tests/test_copies.py::test_a_match_confined_to_a_small_shared_patch_is_not_a_verified_copy"],
    ),
    (
        "four chance inliers verify a pair",
        "analysis/copies/candidates.py",
        "INLIER_THRESHOLD = 10",
        "INLIER_THRESHOLD = 4",
        [
            "tests/test_real_copies.py::test_four_chance_inliers_between_two_distinct_real_photos_do_not_verify",
        ],
    ),
    (
        "the candidate cap keeps each image's least similar partners",
        "analysis/copies/candidates.py",
        "    entries = np.lexsort((-np.tile(similarities, 2), images))  # by image, most similar first",
        "    entries = np.lexsort((np.tile(similarities, 2), images))",
        ["tests/test_copies.py::test_the_candidate_cap_keeps_each_images_most_similar_partners"],
    ),
    (
        "the Clopper-Pearson interval's lower bound at 90% instead of 95%",
        "analysis/stats.py",
        "    low = 0.0 if successes <= 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))",
        "    low = 0.0 if successes <= 0 else float(beta.ppf(alpha, successes, trials - successes + 1))",
        ["tests/test_stats.py::test_proportion_interval_is_clopper_pearson"],
    ),
    (
        "a generated sample is flagged on any inlier, not on a verified match",
        "analysis/regurgitation/compute.py",
        '    samples["flagged"] = samples["id"].map(strongest["acted"]).fillna(False).astype(bool)',
        '    samples["flagged"] = samples["inliers"] > 0',
        ["tests/test_regurgitation.py::test_planted_copies_are_verified_on_pixels_and_novel_samples_are_not"],
    ),
    (
        "the cosine flag sits 0.1 below its threshold",
        "analysis/regurgitation/compute.py",
        '    samples["flagged"] = samples["similarity"].fillna(-1.0) >= threshold',
        '    samples["flagged"] = samples["similarity"].fillna(-1.0) >= threshold - 0.1',
        ["tests/test_regurgitation.py::test_planted_copies_are_flagged_by_cosine_alone_too"],
    ),
    (
        "the relative-change interval is a 50% interval",
        "analysis/stats.py",
        "    return (float(np.percentile(low, 2.5)), float(np.percentile(high, 97.5)))",
        "    return (float(np.percentile(low, 25)), float(np.percentile(high, 75)))",
        ["tests/test_bias.py::test_interval_covers_the_true_change_about_95_percent_of_the_time"],
    ),
    (
        "kappa's bootstrap interval is not widened for small samples",
        "analysis/review/agreement.py",
        "    widen = float(scipy_stats.t.ppf(0.975, max(n - 1, 1)) / scipy_stats.norm.ppf(0.975))",
        "    widen = 1.0",
        ["tests/test_review_process.py::test_kappas_interval_holds_the_truth_at_ten_items"],
    ),
    (
        "the filter builder shows a round's images unblurred",
        "dashboard/views/filter_builder.py",
        "                blur=item not in revealed,",
        "                blur=False,",
        [
            "tests/test_filter_builder_browser.py::"
            "test_a_filter_is_built_in_three_rounds_previewed_and_applied_in_the_browser"
        ],
    ),
    (
        "the regurgitation queue draws from every generated sample, not the flagged ones",
        "analysis/regurgitation/compute.py",
        '    flagged = samples[samples["flagged"]]\n    return pd.DataFrame({"id"',
        '    flagged = samples\n    return pd.DataFrame({"id"',
        [
            "tests/test_review_process.py::test_the_regurgitation_queue_draws_the_samples_that_regurgitation_and_check_flag"
        ],
    ),
    (
        "a filter's queue draws from every removed item",
        "analysis/removals/contract.py",
        '        return f"filter {subset}", removed.loc[removed["filter"] == subset, ["id", "score"]]',
        '        return f"filter {subset}", removed.drop_duplicates("id")[["id", "score"]]',
        ["tests/test_review_process.py::test_a_queue_samples_exactly_the_population_it_names"],
    ),
    (
        "the regurgitation queue draws the cosine-only flags again",
        "analysis/regurgitation/contract.py",
        "flagged_items(self.run(workspace, self.settings(workspace)).samples)",
        "flagged_items(self.run(workspace, self.settings(workspace, verify='none')).samples)",
        [
            "tests/test_review_process.py::test_the_regurgitation_queue_draws_the_samples_that_regurgitation_and_check_flag"
        ],
    ),
    (
        "verification jobs carry every file again",
        "analysis/copies/feature_store.py",
        "    jobs = [([features[p] for p in needed], local, align_from) for _, needed, local in chunks]",
        "    jobs = [(list(features), distinct[chunk], align_from) for chunk, _, _ in chunks]",
        ["tests/test_copies.py::test_dead_links_are_neither_extracted_nor_verified_and_jobs_carry_only_their_files"],
    ),
    (
        "a closed section runs anyway",
        "dashboard/components.py",
        '    tabs = st.tabs(names, key=SECTION_KEY, bind="query-params")',
        "    tabs = st.tabs(names)",
        ["tests/test_dashboard_pages.py::test_a_page_runs_only_its_open_section"],
    ),
    (
        "the warm-up warms nothing",
        "dashboard/warm.py",
        "            warm(workspace)\n",
        "            pass\n",
        ["tests/test_dashboard_pages.py::test_warming_computes_each_pages_first_view_before_anyone_asks"],
    ),
    (
        "histograms sent unbinned again",
        "analysis/charts.py",
        "    counts, edges = np.histogram(np.asarray(values, dtype=np.float64), bins=edges)",
        "    return go.Histogram(x=np.asarray(values), **bar)",
        ["tests/test_bias.py::test_the_weights_chart_carries_one_bar_per_bin_whatever_the_number_of_items"],
    ),
    (
        "q-values no longer corrected for the number of clusters tested",
        "analysis/stats.py",
        '    return p if p.size == 0 else _scipy_stats().false_discovery_control(p, method="bh")',
        "    return p",
        ["tests/test_concepts.py::test_benjamini_hochberg_matches_the_textbook_procedure"],
    ),
    (
        "a cluster counts its kept images as removed",
        "analysis/effects/clusters.py",
        "    gone = np.bincount(labels[embedded & removed], minlength=n_clusters)",
        "    gone = np.bincount(labels[embedded & ~removed], minlength=n_clusters)",
        ["tests/test_concepts.py::test_cluster_counts_match_an_independent_count_from_the_out_file"],
    ),
    (
        "dedup's effects measured on the safety filters' keep-list",
        "analysis/dedup/effects.py",
        "    shifts = bias_report(index, keep, ",
        "    shifts = bias_report(index, workspace.kept, ",
        ["tests/test_concepts.py::test_dedup_reports_what_its_keep_list_removes_matching_an_independent_count"],
    ),
    (
        "a lasso on the map chooses only the points drawn",
        "dashboard/views/map.py",
        '    for region in list(selection.get("lasso") or []) + list(selection.get("box") or []):',
        "    for region in []:",
        [
            "tests/test_dashboard_pages.py::test_a_lasso_on_the_map_chooses_every_image_inside_it_not_only_the_points_drawn"
        ],
    ),
    (
        "a cluster's central images shown unblurred",
        "dashboard/concepts.py",
        "                    blur=sensitive and str(ids[row]) not in revealed,",
        "                    blur=False,",
        ["tests/test_browser.py::test_visual_concepts_show_a_clusters_central_images_blurred_where_removed"],
    ),
    (
        "pairs at the threshold decided by float32 rounding again",
        "analysis/index.py",
        "            accepted[near] = exact >= threshold\n",
        "            pass\n",
        ["tests/test_index.py::test_a_pair_at_the_threshold_is_decided_by_its_float64_similarity"],
    ),
    (
        "images in object storage skipped by pixel verification",
        "analysis/copies/feature_store.py",
        "        if not is_object_url(image):\n",
        "        if True:\n",
        ["tests/test_object_storage.py::test_a_copy_in_s3_is_verified_on_its_pixels"],
    ),
    (
        "distributed caption counts drop a partition",
        "analysis/bias/contract.py",
        "    return report_from_counts(sum(counted[1:], counted[0]), groups)\n",
        "    return report_from_counts(counted[0], groups)\n",
        ["tests/test_distributed.py::test_bias_counts_on_a_two_worker_cluster_equal_one_process"],
    ),
    (
        "prepare's chunks on workers written under the wrong chunk number",
        "analysis/embeddings.py",
        "    _save_chunk(Path(chunk_dir), chunk, ids, vectors, reasons, digests)\n    return",
        "    _save_chunk(Path(chunk_dir), len(paths) - 1 - chunk, ids, vectors, reasons, digests)\n    return",
        ["tests/test_distributed.py::test_prepare_on_a_two_worker_cluster_embeds_and_hashes_the_same_images"],
    ),
    (
        "results keyed on the rows only, not on what the images were (stale after a re-prepare)",
        "analysis/embedding_store.py",
        '        for column in ("id", "reason", "sha256"):\n',
        '        for column in ("id",):\n',
        ["tests/test_gates.py::test_unreadable_samples_make_the_regurgitation_gate_unmeasured"],
    ),
    (
        "the threshold what-if counts rows without a computed score as removed",
        "analysis/removals/compute.py",
        "        free = np.sort(scores[mask & ~removed_by_others & scored])\n",
        "        free = np.sort(scores[mask & ~removed_by_others])\n",
        ["tests/test_dashboard_pages.py::test_the_what_if_is_offered_when_score_filters_sit_beside_a_kept_column"],
    ),
    (
        "the copy tier takes every verified pair (no pixel agreement asked)",
        "analysis/copies/tiers.py",
        "    copy = np.nan_to_num(agreement, nan=-1.0) >= COPY_AGREEMENT\n",
        "    copy = np.ones(len(agreement), dtype=bool)\n",
        [
            "tests/test_tiers.py::test_a_second_shot_of_a_scene_verifies_but_is_same_scene",
            "tests/test_tiers.py::test_dedup_groups_a_copy_but_not_a_second_shot_of_its_scene",
            "tests/test_tiers.py::test_regurgitation_flags_a_copy_and_not_another_shot_of_a_training_scene",
        ],
    ),
    (
        "the tiers' SSIM takes the population covariance, not skimage's sample covariance",
        "analysis/copies/aligned_similarity.py",
        "    cov_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)\n",
        "    cov_norm = 1.0\n",
        ["tests/test_tiers.py::test_local_ssim_is_skimages_ssim_window_by_window"],
    ),
    (
        "the tiers' SSIM windows are 5 pixels wide, not the calibrated 7",
        "analysis/copies/aligned_similarity.py",
        "cv2.boxFilter(image, cv2.CV_64F, (SSIM_WINDOW, SSIM_WINDOW)",
        "cv2.boxFilter(image, cv2.CV_64F, (5, 5)",
        ["tests/test_tiers.py::test_local_ssim_is_skimages_ssim_window_by_window"],
    ),
    (
        "the tier step forgets the mirror of a pair whose transforms verification fitted",
        "analysis/copies/tiers.py",
        "value = agreement_under(*targets, first, second, models[row], bool(mirrored[row]))",
        "value = agreement_under(*targets, first, second, models[row], False)",
        ["tests/test_tiers.py::test_tiers_from_the_transforms_verification_fitted_equal_those_verified_again"],
    ),
    (
        "verification fits a mirrored pair's transforms without the images' widths",
        "analysis/copies/aligned_similarity.py",
        "    if check.inliers < MIN_MATCHES or (check.mirrored and not (width_a and width_b)):",
        "    if check.inliers < MIN_MATCHES:",
        ["tests/test_tiers.py::test_features_stored_without_the_image_width_still_give_every_tier"],
    ),
    (
        "transforms are kept for every pair verification checked, not the verified ones",
        "analysis/copies/feature_store.py",
        "        if align_from is not None and result.inliers >= align_from and result.coverage >= MIN_COVERAGE:",
        "        if align_from is not None:",
        ["tests/test_tiers.py::test_tiers_from_the_transforms_verification_fitted_equal_those_verified_again"],
    ),
    (
        "pool workers run OpenCV's own thread pool (four threads on two cores)",
        "analysis/parallel.py",
        "        opencv_threads(1),\n",
        "        opencv_threads(2),\n",
        ["tests/test_feature_store.py::test_pool_workers_run_opencv_on_one_thread_each_and_extract_the_same_features"],
    ),
    (
        "a dedup check cached before the transforms were kept cannot be read",
        "analysis/dedup/cached.py",
        '            if "aligned_rows" in arrays',
        "            if True",
        ["tests/test_tiers.py::test_a_dedup_check_cached_before_transforms_were_kept_still_gives_every_tier"],
    ),
    (
        "a pair whose alignment cannot be judged counts as a copy",
        "analysis/copies/tiers.py",
        "np.nan_to_num(agreement, nan=-1.0)",
        "np.nan_to_num(agreement, nan=1.0)",
        ["tests/test_tiers.py::test_the_copy_threshold_is_inclusive_and_an_unjudged_pair_is_not_a_copy"],
    ),
    (
        "the copy tier's agreement threshold falls to 0.6",
        "analysis/copies/tiers.py",
        "COPY_AGREEMENT = 0.73",
        "COPY_AGREEMENT = 0.6",
        ["tests/test_real_copies.py::test_a_real_second_shot_is_same_scene_and_a_real_meme_copy_is_a_copy"],
    ),
    (
        "the copy tier's agreement threshold rises to 0.8",
        "analysis/copies/tiers.py",
        "COPY_AGREEMENT = 0.73",
        "COPY_AGREEMENT = 0.8",
        ["tests/test_real_copies.py::test_a_real_second_shot_is_same_scene_and_a_real_meme_copy_is_a_copy"],
    ),
    (
        "dedup groups chain through same-scene pairs by default",
        "analysis/copies/candidates.py",
        "        return self.verified & np.isin(self.tiers.astype(str), list(self.acted_tiers))\n",
        "        return self.verified\n",
        ["tests/test_tiers.py::test_dedup_groups_a_copy_but_not_a_second_shot_of_its_scene"],
    ),
    (
        "regurgitation flags a same-scene match by default",
        "analysis/regurgitation/compute.py",
        'acted=verified & (tiers.isin(acted_tiers) if "tier" in checks else True),',
        "acted=verified,",
        ["tests/test_tiers.py::test_regurgitation_flags_a_copy_and_not_another_shot_of_a_training_scene"],
    ),
    (
        "an exact scan keeps faiss's similarities (not re-scored: they change with the chunk or partition size)",
        "analysis/index.py",
        "        similarities = exact_similarities(query, block, local)\n",
        "        similarities = faiss.knn(query, block, local.shape[1], metric=faiss.METRIC_INNER_PRODUCT)[0]\n",
        [
            "tests/test_index.py::test_an_exact_scan_gives_the_same_neighbours_and_values_however_the_base_is_cut",
            "tests/test_distributed.py::test_regurgitation_split_into_tasks_equals_one_process_in_whole",
        ],
    ),
    (
        "tied neighbours (identical training images) go to the higher row",
        "analysis/index.py",
        'by_row = np.argsort(np.where(merged_rows < 0, np.iinfo(np.int64).max, merged_rows), axis=1, kind="stable")',
        'by_row = np.argsort(-merged_rows, axis=1, kind="stable")',
        ["tests/test_index.py::test_identical_training_images_tie_and_the_lower_row_comes_first"],
    ),
    (
        "the bias headline names the terms that moved least, not most",
        "analysis/bias/contract.py",
        "moved = sorted(shifts, key=lambda s: -abs(s.relative_change or 0.0))[:2]",
        "moved = sorted(shifts, key=lambda s: abs(s.relative_change or 0.0))[:2]",
        ["tests/test_summary.py::test_the_bias_headline_names_the_two_terms_that_moved_most_with_their_intervals"],
    ),
    (
        "a bare `check` ignores the [gates] of audit.toml",
        "pretrain_audit/commands.py",
        "gates = gates_of(workspace, args) or gates_of(workspace, configured_gate_options(workspace))",
        "gates = gates_of(workspace, args)",
        ["tests/test_summary.py::test_check_without_flags_judges_by_the_gates_in_audit_toml"],
    ),
    (
        "the printed report no longer keeps a heading with its first content",
        "analysis/report_layout.py",
        '.keep,.figure,figure,.tile,tr,li,.chart{break-inside:avoid}"\n        "h2,h3{break-after:avoid}',
        '.figure,figure,.tile,tr,li,.chart{break-inside:avoid}"\n        "h2,h3{break-after:auto}',
        ["tests/test_report_and_gates.py::test_the_printed_report_opens_with_its_summary_and_keeps_to_the_page"],
    ),
    (
        "the printed report's pages lose their numbers",
        "analysis/report_layout.py",
        """@bottom-right{content:"Page " counter(page) " of " counter(pages)""",
        '''@bottom-right{content:""''',
        [
            "tests/test_report_and_gates.py::test_the_printed_report_opens_with_its_summary_and_keeps_to_the_page",
            "tests/test_real_data.py::test_the_pdf_of_a_real_photo_audit_opens_with_figures_that_match_the_json",
        ],
    ),
    (
        "the registry no longer hands dedup's groups to regurgitation (no group sizes, no best match after dedup)",
        "analysis/registry.py",
        "_REGURGITATION = Regurgitation(duplicate_groups=_DUPLICATES.duplicate_groups)",
        "_REGURGITATION = Regurgitation()",
        ["tests/test_cli_contract.py::test_cli_json_matches_the_recorded_contract[regurgitation]"],
    ),
    (
        "the review queue is not handed the regurgitation analysis (no copy queue can be drawn)",
        "analysis/registry.py",
        "ReviewQueue(reviewed=(_REMOVALS, _REGURGITATION))",
        "ReviewQueue(reviewed=(_REMOVALS,))",
        [
            "tests/test_review_process.py::"
            "test_the_regurgitation_queue_draws_the_samples_that_regurgitation_and_check_flag"
        ],
    ),
    (
        "the search after dedup is cached by how many rows dedup keeps, not which",
        "analysis/regurgitation/cached.py",
        "array_fingerprint(duplicates.keep)",
        "int(duplicates.keep.sum())",
        ["tests/test_regurgitation.py::test_two_keep_lists_of_one_size_get_their_own_best_match_after_dedup"],
    ),
    (
        "a flag not given replaces the workspace's value with its default",
        "analysis/params.py",
        '"default": argparse.SUPPRESS,',
        '"default": spec.default,',
        ["tests/test_params.py::test_a_flag_not_given_leaves_the_base_value_and_a_given_one_replaces_it"],
    ),
    (
        "a result's cache key leaves out its parameters",
        "analysis/params.py",
        'text = json.dumps({"params": type(self).__qualname__, **self.result_values()}, sort_keys=True)',
        'text = json.dumps({"params": type(self).__qualname__}, sort_keys=True)',
        [
            "tests/test_params.py::test_the_fingerprint_follows_every_result_field_and_ignores_where_it_runs",
            "tests/test_conformance.py::test_each_of_its_parameters_round_trips_through_the_cli_and_audit_toml",
        ],
    ),
    (
        "where the work runs moves the cache key",
        "analysis/distributed.py",
        "        in_toml=False,\n        affects_result=False,",
        "        in_toml=False,\n        affects_result=True,",
        ["tests/test_conformance.py::test_where_it_runs_never_moves_its_cache_key"],
    ),
    (
        "a parameter's minimum is not enforced",
        "analysis/params.py",
        "if minimum is not None and item < minimum:",
        "if minimum is not None and item < minimum - 1e9:",
        ["tests/test_params.py::test_a_bad_flag_value_is_named_by_its_flag"],
    ),
    (
        "the command ignores the workspace's settings",
        "analysis/contract.py",
        "return self.Params.from_options(options, self.settings(workspace))",
        "return self.Params.from_options(options, self.params())",
        ["tests/test_settings.py::test_a_setting_in_audit_toml_is_what_the_command_runs_and_a_flag_overrides_it"],
    ),
    (
        "the workspace's section wins over what the caller asked for",
        "analysis/contract.py",
        "return self.params(**{**{key: getattr(written, key) for key in body}, **overrides})",
        "return self.params(**{**overrides, **{key: getattr(written, key) for key in body}})",
        [
            "tests/test_settings.py::"
            "test_the_duplicates_page_starts_from_the_workspace_settings_and_shows_the_commands_answer"
        ],
    ),
    (
        "the pages ignore the workspace's settings",
        "dashboard/components.py",
        "    return analysis.settings(workspace, **overrides)",
        "    return analysis.params(**overrides)",
        [
            "tests/test_settings.py::test_the_regurgitation_page_verifies_at_the_workspaces_inlier_setting",
            "tests/test_settings.py::test_the_removals_page_measures_the_terms_the_command_measures",
        ],
    ),
    (
        "a misspelt analysis section is accepted",
        "analysis/registry.py",
        "        if section not in names:",
        "        if False:",
        ["tests/test_settings.py::test_a_misspelt_section_is_one_error_naming_it_and_the_sections_there_are"],
    ),
    (
        "repeated captions after filtering are counted in the original set",
        "analysis/caption_repeats/compute.py",
        "    kept_keys = keys[np.asarray(kept, dtype=bool)]",
        "    kept_keys = keys",
        ["tests/test_caption_repeats.py::test_after_filtering_repetition_is_counted_within_the_filtered_set"],
    ),
    (
        "captions are compared as written",
        "analysis/caption_repeats/compute.py",
        "    keys = written.map(normalise_caption)",
        "    keys = written.str.strip()",
        [
            "tests/test_caption_repeats.py::"
            "test_captions_that_differ_only_in_case_punctuation_and_spacing_are_one_caption"
        ],
    ),
    (
        "a caption is repeated at two images whatever min_images says",
        "analysis/caption_repeats/compute.py",
        "int((counts >= min_images).sum())",
        "int((counts >= 2).sum())",
        ["tests/test_caption_repeats.py::test_a_caption_counts_as_repeated_from_min_images_on"],
    ),
    (
        "a filter accepts any column as a score",
        "analysis/filters/definition.py",
        "    wrong = [column for column in columns if column not in usable]",
        "    wrong = [column for column in columns if column not in workspace.original.columns]",
        ["tests/test_filter_builder.py::test_a_filter_uses_only_score_columns_and_names_the_ones_there_are"],
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="run the mutations whose name contains this text")
    parser.add_argument(
        "--write",
        action="store_true",
        help="record every result in docs/mutations.json and its table in docs/mutations.md, after each mutation "
        "(a killed run resumes: mutations already recorded at the same commit are not run again)",
    )
    args = parser.parse_args()
    record = _started_record(args) if args.write else None
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        worktree = Path(scratch) / "worktree"
        if (REPO.parent / "shared").exists():  # tests find real data at ../shared/real
            (Path(scratch) / "shared").symlink_to(REPO.parent / "shared")
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), "HEAD"], check=True)
        try:
            for name, path, old, new, tests in MUTATIONS:
                if args.only and args.only not in name:
                    continue
                if record is not None and name in {r["mutation"] for r in record["results"]}:
                    continue
                result = check(worktree, name, path, old, new, tests)
                if record is not None:
                    result["commit"] = record["commit"]
                    record["results"].append(result)
                    record["seconds"] = round(record.get("seconds_before", 0) + time.monotonic() - started)
                    _write(record)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)


RECORD, TABLE = REPO / "docs" / "mutations.json", REPO / "docs" / "mutations.md"


def _started_record(args: argparse.Namespace) -> dict:
    """The record of this commit's run so far (resumed), or a new one."""
    import json

    from bench.common import run_record

    command = "python -m bench.mutation_check --write" + (f" --only {args.only!r}" if args.only else "")
    fresh = {**run_record(command), "results": [], "seconds": 0}
    if args.only and RECORD.exists():
        # New or changed rows join the last full run's record (each row names the commit it ran at), so the table
        # keeps every row instead of only the ones run now.
        previous = json.loads(RECORD.read_text())
        previous["results"] = [r for r in previous["results"] if args.only not in r["mutation"]]
        previous["command"] = f"{previous['command']}; then {command}"
        previous["seconds_before"] = previous.get("seconds", 0)
        previous["commit"] = fresh["commit"]
        return previous
    if RECORD.exists():
        previous = json.loads(RECORD.read_text())
        if previous.get("command") == command and _same_code(previous.get("commit", ""), fresh["commit"]):
            previous["seconds_before"] = previous.get("seconds", 0)
            previous["commit"] = fresh["commit"]
            return previous
    return fresh


def _same_code(before: str, now: str) -> bool:
    """Whether the code the mutations and their tests run is the same at both commits (documentation, benchmarks
    and this harness may differ): a killed run then resumes instead of starting again."""
    if "+" in before or "+" in now:
        return before == now
    changed = subprocess.run(
        ["git", "diff", "--quiet", before, now, "--", ".", ":!docs", ":!bench", ":!README.md"], cwd=REPO
    )
    return changed.returncode == 0


def _write(record: dict) -> None:
    import json

    payload = {key: value for key, value in record.items() if key != "seconds_before"}
    RECORD.write_text(json.dumps(payload, indent=1) + "\n")
    results = record["results"]
    caught = sum(all(t["caught"] for t in r["tests"]) for r in results)
    commits = sorted({r.get("commit", record["commit"]) for r in results})
    lines = [
        "# Mutation check: every decision a test claims to guard, broken on purpose",
        "",
        f"Written by `{record['command']}` at commit {', '.join(commits)} "
        + ("(the same code under test), " if len(commits) == 1 else "(each row ran at one of them: mutations.json), ")
        + f"{record['date']}: {len(results)} of "
        f"{len(MUTATIONS)} mutations run, {caught} caught by every test named for them, "
        f"{record['seconds'] / 60:.0f} min of wall time (2 cores). Each mutation replaces one line in a throwaway "
        "worktree and runs only its named tests (bench/mutation_check.py); a test that still passes is a finding.",
        "",
        "| mutation | file | tests that must fail | caught |",
        "| --- | --- | --- | --- |",
    ]
    for result in results:
        tests = "<br>".join(
            f"{t['test'].removeprefix('tests/')} ({'fails' if t['caught'] else '**passes**'})" for t in result["tests"]
        )
        verdict = "yes" if all(t["caught"] for t in result["tests"]) else "**no**"
        lines.append(f"| {result['mutation']} | `{result['file']}` | {tests} | {verdict} |")
    TABLE.write_text("\n".join(lines) + "\n")


def check(worktree: Path, name: str, path: str, old: str, new: str, tests: list[str]) -> dict:
    file = worktree / path
    text = file.read_text()
    if old not in text:
        raise SystemExit(f"{path}: the line this mutation replaces is gone; update bench/mutation_check.py ({name})")
    file.write_text(text.replace(old, new, 1))
    started = time.monotonic()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
            cwd=worktree,
            capture_output=True,
            text=True,
            # processes the tests start outside the worktree's cwd (Dask workers) import the mutated code too,
            # not the editable install's checkout
            env={**os.environ, "PYTHONPATH": str(worktree)},
        )
    finally:
        file.write_text(text)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-300:]
    failed = re.findall(r"(?:FAILED|ERROR) (\S+)", run.stdout)  # an error in a fixture fails the test too
    print(f"{name}: {summary}", flush=True)
    outcome = []
    for test in tests:
        caught = any(f.startswith(test) for f in failed)
        print(f"    {'FAILS' if caught else 'passes (!)'}  {test}", flush=True)
        outcome.append({"test": test, "caught": caught})
    return {"mutation": name, "file": path, "tests": outcome, "seconds": round(time.monotonic() - started, 1)}


if __name__ == "__main__":
    main()
