"Project promises that span files: one Quarto config, README in step with its notebook, papermill tags kept."
import configparser
import subprocess
import sys

from conftest import ROOT


def test_single_quarto_config():
    top, nbs = ROOT / '_quarto.yml', ROOT / 'nbs' / '_quarto.yml'
    assert top.is_symlink() and top.resolve() == nbs.resolve()


def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_settings_keep_papermill_tags_and_nbdev2():
    s = configparser.ConfigParser(); s.read(ROOT / 'settings.ini')
    d = s['DEFAULT']
    assert 'tags' in d['allowed_cell_metadata_keys'].split()
    assert 'nbdev>=2.4,<3' in d['dev_requirements'].split()
    assert not any(r.startswith('torch==') for r in d['requirements'].split())


def test_readme_commands_exist():
    text = (ROOT / 'README.md').read_text()
    for cmd in ('bash scripts/main.sh', 'bash scripts/test.sh'):
        assert cmd in text and (ROOT / cmd.split()[1]).exists()
    assert 'scripts/test.sh' in (ROOT / '.ci' / 'run').read_text()


def test_ci_workflows_as_nbdev_projects_have_them():
    "GitHub Actions: tests on CPU through the README's test command, and a Quarto build and deploy of the site."
    import yaml
    s = configparser.ConfigParser(); s.read(ROOT / 'settings.ini')
    wf = ROOT / '.github' / 'workflows'
    test, deploy = yaml.safe_load((wf / 'test.yaml').read_text()), yaml.safe_load((wf / 'deploy.yaml').read_text())
    runs = lambda w: ' '.join(st.get('run', '') for job in w['jobs'].values() for st in job['steps'])
    uses = lambda w: [st.get('uses', '') for job in w['jobs'].values() for st in job['steps']]
    assert 'bash .ci/run' in runs(test) and 'download.pytorch.org/whl/cpu' in (wf / 'test.yaml').read_text()
    assert 'nbdev_docs' in runs(deploy) and any(u.startswith('quarto-dev/quarto-actions/setup') for u in uses(deploy))
    publish = next(st for job in deploy['jobs'].values() for st in job['steps'] if st.get('uses', '').startswith('peaceiris/actions-gh-pages'))
    assert publish['with']['publish_dir'].strip('./') == s['DEFAULT']['doc_path']


def test_license_and_citation():
    import yaml
    assert 'Apache License' in (ROOT / 'LICENSE').read_text() and 'Version 2.0, January 2004' in (ROOT / 'LICENSE').read_text()
    c = yaml.safe_load((ROOT / 'CITATION.cff').read_text())
    s = configparser.ConfigParser(); s.read(ROOT / 'settings.ini')
    assert c['cff-version'] == '1.2.0' and c['license'] == 'Apache-2.0' and c['version'] == s['DEFAULT']['version']
    p = c['preferred-citation']
    assert p['title'].startswith('Unmasking the Lottery Ticket Hypothesis') and p['year'] == 2022
    assert [a['family-names'] for a in p['authors']] == ['Paul', 'Chen', 'Larsen', 'Frankle', 'Ganguli', 'Dziugaite']
