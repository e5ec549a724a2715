"bench/compare_seed_sets.py: one row per rule across two runs, flips counted, exit status 1 on a yes/no flip."
import json, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / 'bench'))
import compare_seed_sets as css


def scrap(name, data):
    return {'output_type': 'display_data', 'metadata': {'scrapbook': {'name': name}},
            'data': {'application/scrapbook.scrap.json+json': {'name': name, 'data': data}}}


def verdict(claim, v, margin=0.01):
    return dict(claim=claim, verdict=v, margin=margin, uncertainty=0.005, unit='error', n=4, resolution=0.0001, why=None)


def write_run(folder: Path, fig5_claim, fig5_verdict, fig3_level):
    folder.mkdir()
    rows = {'fig2_connectivity': [verdict('rewind 0: most pruned levels are not matching', 'undecided')],
            'fig3_planes': [verdict(f'where matching breaks (level {fig3_level}), w^({fig3_level}) lies outside the '
                                    f'LCS-set of w^({fig3_level - 1})', 'yes')],
            'fig4_adaptive': [],
            'fig5_rewind': [verdict(fig5_claim, fig5_verdict)]}
    for name, vs in rows.items():
        outs = [scrap('verdicts', vs)]
        if name == 'fig5_rewind': outs += [scrap('seeds', [0, 1]), scrap('dense', [0.04, 0.003, 16]),
                                           scrap('mean_test_error', {'0': [0.04, 0.05], '150': [0.04, 0.042]})]
        (folder / f'{name}.ipynb').write_text(json.dumps({'cells': [{'cell_type': 'code', 'outputs': outs}]}))


def test_rules_match_across_chosen_levels_and_a_flip_exits_1(tmp_path, capsys):
    decided = 'at level 4 (40.9% weights, the sparsest where rewind 150 clearly matches), rewind 0 is worse and not matching'
    untestable = 'where rewind 150 is still clearly matching, rewind 0 is worse and not matching'
    assert css.rule(decided) == css.rule(untestable) == untestable
    write_run(tmp_path / 'a', decided, 'yes', 8)
    write_run(tmp_path / 'b', untestable, 'untestable', 9)
    assert css.main([str(tmp_path / 'a'), str(tmp_path / 'b')]) == 0
    out = capsys.readouterr().out
    table = [l for l in out.splitlines() if l.startswith('| ') and not l.startswith('| figure')]
    assert len(table) == 3, out                                      # fig3's level 8 and 9 rows, fig5's two texts: one row each
    assert 'yes/no flips: 0' in out and 'rewind 0: mean |difference| 0.00, largest 0.00' in out
    write_run(tmp_path / 'c', decided, 'no', 8)
    assert css.main([str(tmp_path / 'a'), str(tmp_path / 'c')]) == 1
    assert '**yes**' in capsys.readouterr().out
