"""visattn_mm: an OpenMMLab plugin with four vision-attention backbone families.

``pip install -e .`` (or a wheel) installs the package; ``visattn_mm/.mim`` carries the configs,
tools and model index so that ``mim train/test/search`` find them.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'visattn_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension() -> None:
    """Put configs/, tools/ and model-index.yml under visattn_mm/.mim for mim.

    Symlinks for editable/develop installs (configs stay live), copies for wheels and sdists.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'install', 'build')):
        mode = 'copy'
    else:
        return
    mim_root = osp.join(HERE, 'visattn_mm', '.mim')
    os.makedirs(mim_root, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src = osp.join(HERE, name)
        dst = osp.join(mim_root, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_root), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='visattn_mm',
        version=read_version(),
        description='BViT, Dense attention, PSLT and FCViT backbones for OpenMMLab '
                    '(mmpretrain, mmdet, mmsegmentation)',
        long_description=open(osp.join(HERE, 'README.md')).read(),
        long_description_content_type='text/markdown',
        license='Apache-2.0',
        packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
        include_package_data=True,
        python_requires='>=3.9',
        # Ranges, not pins: the package installs into an existing OpenMMLab environment
        # without replacing its torch or its compiled mmcv. torch 2.1 (SDPA's scale=) is the
        # floor; APIs newer than that go through visattn_mm/compat.py. mmdet 3.x and mmseg 1.x
        # need mmcv < 2.2. Tested: the floor (torch 2.1.2) and the pinned set-up (torch 2.13).
        install_requires=[
            'torch>=2.1', 'mmengine>=0.10.0,<0.11', 'mmcv>=2.0.0,<2.2.0', 'mmdet>=3.0.0,<4',
            'mmsegmentation>=1.0.0,<2', 'mmpretrain>=1.0.0,<2',
        ],
        extras_require={'tests': ['pytest']},
        zip_safe=False,
    )
