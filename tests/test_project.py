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
