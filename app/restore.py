"""``consent-agent restore FILE``: become the same agent on a new device, from an encrypted key backup.

The backup (made in the app's Settings) holds the identity key, the signing keys and the master
secret, sealed with the backup passphrase. Restoring writes them into a data directory that has no
keys yet, protected the same way ``serve`` protects new keys (a passphrase, the OS keychain, or,
for development only, plaintext). Then ``consent-agent serve`` starts as the same agent id.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from app import runtime
from core.clock import system_clock
from core.keys import KeyStoreError, os_keychain_usable, restore_into

BACKUP_PASSPHRASE_ENV = "CONSENT_AGENT_BACKUP_PASSPHRASE"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("backup", type=Path, metavar="FILE", help="the encrypted backup to restore")
    p.add_argument("--backup-passphrase-file", type=Path, metavar="F", help="the backup's passphrase")
    p.add_argument("--passphrase-file", type=Path, metavar="F", help="protect the restored keys with this")
    p.add_argument("--insecure-plaintext-keys", action="store_true", help="unencrypted keys (development)")


def backup_passphrase(ns: argparse.Namespace, env: Mapping[str, str]) -> str:
    if ns.backup_passphrase_file is not None:
        try:
            return str(ns.backup_passphrase_file.read_text(encoding="utf-8")).removesuffix("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise runtime.StartError(f"cannot read {ns.backup_passphrase_file}: {exc}") from None
    if env.get(BACKUP_PASSPHRASE_ENV):
        return env[BACKUP_PASSPHRASE_ENV]
    if sys.stdin.isatty():
        return getpass.getpass("Backup passphrase: ")
    raise runtime.StartError(f"give the backup's passphrase with --backup-passphrase-file F or "
                             f"{BACKUP_PASSPHRASE_ENV}")


def restore(ns: argparse.Namespace, data_dir: Path, env: Mapping[str, str] = os.environ) -> int:
    try:
        try:
            blob = ns.backup.read_bytes()
        except OSError as exc:
            raise runtime.StartError(f"cannot read the backup {ns.backup}: {exc.strerror or exc}") from None
        secret = backup_passphrase(ns, env)
        opts = runtime.ServeOptions(data_dir=data_dir, passphrase_file=ns.passphrase_file,
                                    insecure_plaintext_keys=ns.insecure_plaintext_keys)
        passphrase = runtime.read_passphrase(opts, env)
        keychain = passphrase is None and os_keychain_usable()
        if passphrase is None and not keychain and not ns.insecure_plaintext_keys:
            raise runtime.StartError("how should the restored keys be protected? give --passphrase-file F or "
                                     f"{runtime.PASSPHRASE_ENV}, or set up an OS keychain")
        target = runtime.prepare_data_dir(data_dir)
        ring = restore_into(target, blob, secret, clock=system_clock, passphrase=passphrase,
                            use_os_keychain=keychain, plaintext_dev=ns.insecure_plaintext_keys)
    except (runtime.StartError, KeyStoreError) as exc:
        print(f"consent-agent: {exc}", file=sys.stderr)
        return 1
    print(f"Restored agent {ring.agent_id} into {target} (keys: {ring.protection}).\n"
          f"Start it with: consent-agent serve --data-dir {target}")
    return 0
