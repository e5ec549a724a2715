"""Calibration sweep behind the `cpu` preset (see "Calibrating the cpu preset" in nbs/00_config.ipynb).

Runs IMP-WR for several MNIST-1D variants and model sizes in parallel (one process and one thread per
variant), then measures the test-error barrier between successive levels with all parameters and BatchNorm
statistics interpolated at 11 points. Results go to OUT/results.jsonl, one line per variant.

    python bench/calibrate_cpu_preset.py run OUT         # the sweep (about 6 minutes per variant per core)
    python bench/calibrate_cpu_preset.py summary OUT/results.jsonl
"""
import json, os, sys, time, multiprocessing as mp
def run(args):
    name, ov = args
    import torch; torch.set_num_threads(1)
    from lottery_nb.config import get_preset
    from lottery_nb.imp import run_imp
    from lottery_nb.data import get_data
    from lottery_nb.models import get_model
    from lottery_nb.training import evaluate
    cfg = get_preset('cpu', **ov)
    t0 = time.time()
    exp = run_imp(cfg, f'/tmp/calib/{name}', progress=False)
    t_imp = time.time() - t0
    data = get_data(cfg.dataset, **cfg.data_kwargs)
    model = get_model(cfg.model, data.num_classes, data.input_shape, seed=0, **cfg.model_kwargs)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    def err(sd):
        model.load_state_dict(sd); return evaluate(model, data, 'test')['error']
    res = {'name': name, 'ov': ov, 't_imp': t_imp, 'rows': [], 'barriers': {}}
    rows = exp.results(); res['rows'] = [{k: r[k] for k in ('seed','rewind_step','level','density','test_error','train_error','train_loss','wall_time')} for r in rows]
    for s in cfg.seeds:
        for r in plan.rewind_steps:
            bs = []
            for L in range(cfg.levels):
                a, b = exp.weights(s, r, L), exp.weights(s, r, L + 1)
                es = []
                for i in range(11):
                    beta = i / 10
                    sd = {k: ((1 - beta) * a[k] + beta * b[k]) if a[k].is_floating_point() else a[k] for k in a}
                    es.append(err(sd))
                bs.append(max(e - ((1 - i/10) * es[0] + i/10 * es[-1]) for i, e in enumerate(es)))
            res['barriers'][f'{s}_{r}'] = bs
    return res
def sweep(out):
    os.makedirs(out, exist_ok=True)
    D = {'d0': {}, 'd1': dict(corr_noise_scale=0.4, iid_noise_scale=0.05), 'd2': dict(corr_noise_scale=0.5, iid_noise_scale=0.08),
         'd3': dict(corr_noise_scale=0.6, iid_noise_scale=0.1, num_samples=3000), 'd4': dict(num_samples=3000)}
    jobs = []
    for dn, dk in D.items():
        for w in (16, 32):
            jobs.append((f'{dn}_w{w}', dict(data_kwargs=dk, model_kwargs=dict(width=w), rewind_steps=['0it', '10it', '50it', '150it'], levels=11, seeds=[0, 1])))
    jobs.append(('d2_w32_lr0.2', dict(data_kwargs=D['d2'], model_kwargs=dict(width=32), lr=0.2, rewind_steps=['0it', '10it', '50it', '150it'], levels=11, seeds=[0, 1])))
    jobs.append(('d1_w32_2k', dict(data_kwargs=D['d1'], model_kwargs=dict(width=32), training_steps='2000it', milestones=['1000it', '1500it'], rewind_steps=['0it', '20it', '100it', '300it'], levels=11, seeds=[0, 1])))
    jobs.append(('d2_w16_d4', dict(data_kwargs=D['d2'], model_kwargs=dict(width=16, depth=4), rewind_steps=['0it', '10it', '50it', '150it'], levels=11, seeds=[0, 1])))
    jobs.append(('d1_w32_lr0.05', dict(data_kwargs=D['d1'], model_kwargs=dict(width=32), lr=0.05, rewind_steps=['0it', '10it', '50it', '150it'], levels=11, seeds=[0, 1])))
    jobs.append(('d3_w32_lr0.2', dict(data_kwargs=D['d3'], model_kwargs=dict(width=32), lr=0.2, rewind_steps=['0it', '10it', '50it', '150it'], levels=11, seeds=[0, 1])))
    if os.environ.get('QUICK'):
        jobs = [(n, {**o, 'levels': 1, 'seeds': [0]}) for n, o in jobs[:2]]
    with mp.Pool(min(len(jobs), os.cpu_count())) as pool:
        for res in pool.imap_unordered(run, jobs):
            with open(f'{out}/results.jsonl', 'a') as f: f.write(json.dumps(res) + '\n')
            print('done', res['name'], round(res['t_imp']), flush=True)


import statistics as st


def summary(path):
    for line in open(path):
        r = json.loads(line)
        rows = r['rows']; seeds = sorted({x['seed'] for x in rows}); rw = sorted({x['rewind_step'] for x in rows})
        dense = [x['test_error'] for x in rows if x['level'] == 0 and x['rewind_step'] == rw[0]]
        dm, eps = st.mean(dense), (st.stdev(dense) if len(dense) > 1 else 0)
        print(f"== {r['name']}  {r['ov'].get('data_kwargs')} {r['ov'].get('model_kwargs')} lr={r['ov'].get('lr', 0.1)}  t_imp={r['t_imp']:.0f}s  dense err {100*dm:.2f}% eps {100*eps:.2f}%")
        levels = sorted({x['level'] for x in rows})
        for t in rw:
            errs = [100 * st.mean([x['test_error'] for x in rows if x['rewind_step'] == t and x['level'] == L]) for L in levels]
            bars = [100 * st.mean([r['barriers'][f'{s}_{t}'][L] for s in seeds]) for L in levels[:-1]]
            print(f"  rw {t:4d} err: " + ' '.join(f"{e:5.1f}" for e in errs))
            print(f"          bar:      " + ' '.join(f"{b:5.1f}" for b in bars))
        print('  density: ' + ' '.join(f"{100*0.8**L:5.1f}" for L in levels))


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('run', 'summary'): sys.exit(__doc__)
    sweep(sys.argv[2]) if sys.argv[1] == 'run' else summary(sys.argv[2])
