"""Throwaway Debian test hosts booted with systemd-nspawn and reached over SSH.

Each host is an overlay copy of a cached debootstrap image, runs real systemd in its own
network namespace and cgroup, and is listed in an Ansible inventory. See ``python -m hostlab -h``.
The Python API lives in :mod:`hostlab.image` (``build_image``) and :mod:`hostlab.lab`
(``up``, ``down``, ``list_hosts``).
"""
