"""Packaging for lottery-nb. Every value comes from `settings.ini` (the nbdev 2 project file)."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent / 'settings.ini')
s = cfg['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
lic = licenses[s['license']]
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable']
py_versions = ['3.10', '3.11', '3.12', '3.13']
min_py = s['min_python']


def reqs(key):
    return s.get(key, '').split()


readme = Path(__file__).parent / 'README.md'
setuptools.setup(
    name=s['repo'],
    version=s['version'],
    description=s['description'],
    long_description=readme.read_text() if readme.exists() else s['description'],
    long_description_content_type='text/markdown',
    author=s['author'],
    author_email=s['author_email'],
    url=s['git_url'],
    license=lic[0],
    keywords=s['keywords'].split(),
    classifiers=[
        'Development Status :: ' + statuses[int(s['status']) - 1],
        'Intended Audience :: ' + s['audience'],
        'License :: ' + lic[1],
        'Natural Language :: ' + s['language'],
    ] + ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_py):]],
    packages=setuptools.find_packages(include=[s['lib_name'], s['lib_name'] + '.*']),
    include_package_data=True,
    install_requires=reqs('requirements'),
    extras_require={'dev': reqs('dev_requirements')},
    python_requires='>=' + min_py,
    zip_safe=False,
    entry_points={
        'console_scripts': s['console_scripts'].split(),
        'nbdev': [f"{s['lib_path']}={s['lib_path']}._modidx:d"],
    },
)
