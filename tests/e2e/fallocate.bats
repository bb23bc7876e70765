#!/usr/bin/env bats
# fallocate.bats — fallocate(2) on a mount: every mode is part of the
# writer's session (staged, committed at close like a write), the ranges
# read as zeros as on the ext4 twin, a reservation past the free space is
# ENOSPC, and COLLAPSE_RANGE / INSERT_RANGE are EOPNOTSUPP. The errno
# cases against ext4 are rows of posix.table.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

# falloc PATH OP... — in one process, open PATH O_RDWR and run each OP:
# MODE:OFF:LEN (MODE a comma list of keep punch zero, or 0) calls
# fallocate(2), "size" prints the descriptor's fstat size, "close" closes
# (the commit). Prints one line per OP: OK, the size, or the errno name.
falloc() {
	python3 - "$@" <<'EOF'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
MODES = {"0": 0, "keep": 1, "punch": 2, "zero": 0x10}
fd = os.open(sys.argv[1], os.O_RDWR)
for op in sys.argv[2:]:
    if op == "size":
        print(os.fstat(fd).st_size)
    elif op == "close":
        os.close(fd)
        print("OK")
    else:
        mode, off, n = op.split(":")
        m = sum(MODES[w] for w in mode.split(","))
        if libc.fallocate(fd, m, int(off), int(n)) < 0:
            print(errno.errorcode[ctypes.get_errno()])
        else:
            print("OK")
EOF
}

@test "fallocate is staged in the writer's session: readers see the old version until close" {
	mount_pfs
	gen_bin "$MNT/f" 100000 1
	gen_bin "$TWIN/f" 100000 1
	python3 - "$MNT/f" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
p = sys.argv[1]
before = open(p, "rb").read()
fd = os.open(p, os.O_RDWR)
assert libc.fallocate(fd, 0, 50000, 150000) == 0            # to 200,000 bytes
assert libc.fallocate(fd, 0x10, 1000, 2000) == 0            # zero range
assert libc.fallocate(fd, 0x03, 90000, 20000) == 0          # punch a hole
assert os.fstat(fd).st_size == 200000, os.fstat(fd).st_size
assert os.pread(fd, 10, 1500) == b"\0" * 10
# another reader still reads the committed version, whole

assert open(p, "rb").read() == before
os.close(fd)
after = open(p, "rb").read()
assert len(after) == 200000
assert after[:1000] == before[:1000] and after[1000:3000] == b"\0" * 2000
assert after[90000:110000] == b"\0" * 20000 and after[110000:] == b"\0" * 90000
print("ok")
EOF
	falloc "$TWIN/f" 0:50000:150000 zero:1000:2000 keep,punch:90000:20000 close
	same_file "$MNT/f" "$TWIN/f"
	# posix_fallocate(3) (fallocate(1) -x is its write fallback; -l calls fallocate(2))
	fallocate -l 300000 "$MNT/f"
	fallocate -l 300000 "$TWIN/f"
	same_file "$MNT/f" "$TWIN/f"
	# a clean session commits nothing: KEEP_SIZE and mode 0 inside the file
	v=$(xget "$MNT/f" user.payload.version)
	run falloc "$MNT/f" keep:0:1000000 0:0:1000 size close
	[ "${lines[*]}" = "OK OK 300000 OK" ]
	[ "$(xget "$MNT/f" user.payload.version)" = "$v" ]
	[ "$(stat -c %s "$MNT/f")" = 300000 ]
}

@test "punched and zeroed ranges commit as zeros, like ext4's, and cost next to no space" {
	mount_pfs
	gen_bin "$TWIN/big" $((8 << 20)) 3
	cp "$TWIN/big" "$MNT/big"
	local ops=(keep,punch:1000:3000000 zero:5000000:1000000 zero:8000000:4000000
		   keep,zero:11000000:9000000 keep,punch:12000000:99 0:0:13000000)
	run falloc "$MNT/big" "${ops[@]}" size close
	show_output
	[ "${lines[*]}" = "OK OK OK OK OK OK 13000000 OK" ]
	run falloc "$TWIN/big" "${ops[@]}" size close
	[ "${lines[*]}" = "OK OK OK OK OK OK 13000000 OK" ]
	same_file "$MNT/big" "$TWIN/big"
	# 8 MiB of random bytes, about 4 MiB of them punched or zeroed, 4 MiB
	# of zeros added: once the old images went (after the unmount's index
	# flush), the images hold about the 4 MiB left
	unmount_pfs
	local frag
	frag=$(store_image_bytes)
	echo "# fragment images: $frag bytes" >&3
	[ "$frag" -lt $((6 << 20)) ]
	mount_pfs
	same_file "$MNT/big" "$TWIN/big"
}

@test "fallocate beyond the free space is ENOSPC and changes nothing; COLLAPSE and INSERT are EOPNOTSUPP" {
	if ! rados_mode; then          # a RADOS store's free space is the cluster's
		mkdir "$TMP/small"
		mount -t tmpfs -o size=32m,mode=0700 tmpfs "$TMP/small"
		EXTRA_MOUNTS+=("$TMP/small")
		rmdir "$STORE"
		STORE=$TMP/small/store
		mkdir "$STORE"
	fi
	mount_pfs
	echo data >"$MNT/f"
	local big
	big=$(($(stat -f -c '%a * %S' "$MNT") + (64 << 20)))     # what statfs says is free, and more
	echo "# $big bytes" >&3
	run falloc "$MNT/f" 0:0:$big keep:0:$big zero:100:$big size \
		0:0:$((4 << 20)) size close
	show_output
	[ "${lines[*]}" = "ENOSPC ENOSPC ENOSPC 5 OK $((4 << 20)) OK" ]
	[ "$(stat -c %s "$MNT/f")" = $((4 << 20)) ]
	[ "$(head -c 5 "$MNT/f")" = data ]
	run fallocate -c -o 4096 -l 4096 "$MNT/f"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not supported"* ]]
	run fallocate -i -o 4096 -l 4096 "$MNT/f"
	[ "$status" -ne 0 ]
	[[ $output == *"Operation not supported"* ]]
	[ "$(stat -c %s "$MNT/f")" = $((4 << 20)) ]
	daemon_alive
}
