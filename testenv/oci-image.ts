// Container images made without a registry: a folder of files becomes a one-layer OCI image
// archive that `ctr images import` loads. The test images of the real node (testenv/real-node.ts)
// are busybox-static from Debian plus a config; nothing is pulled.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface ImageConfig {
  /** Full reference, e.g. `shardwarden.local/busybox:1`; a registry host keeps CRI from renaming it. */
  name: string;
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
  env?: string[];
  workingDir?: string;
}

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar';

interface Blob {
  digest: string;
  size: number;
}

function writeBlob(layout: string, data: Buffer): Blob {
  const hex = createHash('sha256').update(data).digest('hex');
  writeFileSync(join(layout, 'blobs', 'sha256', hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

/** A deterministic tar of `rootfs`: same files, same bytes, so the same layer digest. */
function tarLayer(rootfs: string, out: string): Buffer {
  execFileSync('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
    '-C',
    rootfs,
    '-cf',
    out,
    '.',
  ]);
  return readFileSync(out);
}

/** The OCI image config and manifest for one layer (pure). */
function imageDocuments(
  config: ImageConfig,
  layer: Blob,
): { config: object; manifest: (configBlob: Blob) => object } {
  return {
    config: {
      architecture: 'amd64',
      os: 'linux',
      config: {
        Entrypoint: config.entrypoint,
        Cmd: config.cmd,
        User: config.user,
        Env: config.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        WorkingDir: config.workingDir,
      },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    },
    manifest: (configBlob) => ({
      schemaVersion: 2,
      mediaType: MANIFEST,
      config: { mediaType: CONFIG, ...configBlob },
      layers: [{ mediaType: LAYER, ...layer }],
    }),
  };
}

/**
 * Writes an OCI image archive of `rootfs` (one layer) holding one image per config, all sharing
 * that layer, to `archive`. Returns the archive path.
 */
export function writeOciArchive(
  rootfs: string,
  configs: ImageConfig[],
  workDir: string,
  archive: string,
): string {
  const layout = join(workDir, 'oci-layout');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  const layer = writeBlob(layout, tarLayer(rootfs, join(workDir, 'layer.tar')));
  const manifests = configs.map((image) => {
    const docs = imageDocuments(image, layer);
    const configBlob = writeBlob(layout, Buffer.from(JSON.stringify(docs.config)));
    const manifest = writeBlob(layout, Buffer.from(JSON.stringify(docs.manifest(configBlob))));
    return {
      mediaType: MANIFEST,
      ...manifest,
      annotations: {
        'io.containerd.image.name': image.name,
        'org.opencontainers.image.ref.name': image.name.slice(image.name.lastIndexOf(':') + 1),
      },
    };
  });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
  mkdirSync(dirname(archive), { recursive: true });
  execFileSync('tar', ['--sort=name', '--mtime=@0', '-C', layout, '-cf', archive, '.']);
  return archive;
}

/** A root filesystem of busybox-static with its applets linked into /bin, and an empty /tmp. */
export function busyboxRootfs(busybox: string, rootfs: string): string {
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(rootfs, 'tmp'), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  copyFileSync(busybox, join(rootfs, 'bin', 'busybox'));
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const applet of applets) if (applet !== 'busybox') symlinkSync('busybox', join(rootfs, 'bin', applet));
  // nobody, so images can run as a non-root uid with a name.
  writeFileSync(
    join(rootfs, 'etc', 'passwd'),
    'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  return rootfs;
}
