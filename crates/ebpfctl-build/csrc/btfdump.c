// Drives libbpf's btf_dump to write a C header (vmlinux.h style) for a BTF blob.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

static void emit(void *ctx, const char *fmt, va_list args) { vfprintf((FILE *)ctx, fmt, args); }

// Loads BTF from a file (raw BTF or ELF) or, when path is NULL, from the kernel by id.
// base_path, when set, is the base BTF of a split BTF (a kernel module's).
// Returns 0 or a negative errno.
int ebpfctl_btf_dump_c(const char *path, unsigned int id, const char *base_path, const char *out_path)
{
	struct btf *base = NULL, *btf = NULL;
	struct btf_dump *d = NULL;
	FILE *out = NULL;
	int err = 0;

	if (base_path) {
		base = btf__parse(base_path, NULL);
		if (!base) return -errno;
	}
	btf = path ? btf__parse_split(path, base) : btf__load_from_kernel_by_id_split(id, base);
	if (!btf) { err = -errno; goto out; }
	out = fopen(out_path, "w");
	if (!out) { err = -errno; goto out; }
	d = btf_dump__new(btf, emit, out, NULL);
	if (!d) { err = -errno; goto out; }

	fprintf(out, "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n");
	fprintf(out, "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n");
	fprintf(out, "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#endif\n\n");
	__u32 n = btf__type_cnt(btf);
	for (__u32 i = base ? btf__type_cnt(base) : 1; i < n; i++) {
		err = btf_dump__dump_type(d, i);
		if (err) goto out;
	}
	fprintf(out, "\n#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n#endif /* __VMLINUX_H__ */\n");
out:
	if (d) btf_dump__free(d);
	if (out && fclose(out) && !err) err = -errno;
	btf__free(btf);
	btf__free(base);
	return err;
}
