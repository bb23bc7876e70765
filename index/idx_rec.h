/* idx_rec — the byte layouts of the index's keys and values
 * (docs/format.md §The index): pure encode and decode functions, no LMDB.
 * idx_lmdb.c is the only caller in the daemon; the fuzzers call them
 * directly. Any thread may call.
 *
 * Every decoder takes the bytes LMDB handed out (pointer and length),
 * checks the length and every field the format constrains, and returns
 * -EUCLEAN for a record that the encoder could not have written; on
 * failure the out-parameters are left unspecified. Encoders never fail
 * except where noted. */
#ifndef PFS_IDX_REC_H
#define PFS_IDX_REC_H

#include <stddef.h>
#include <stdint.h>

#include "index/idx.h"

#define IDX_REC_INODE_VER  1
#define IDX_REC_INODE_LEN  120   /* docs/format.md §Inode record */
#define IDX_REC_FRAG_LEN   48    /* §Fragment record */
#define IDX_REC_DIRENT_LEN 12    /* child u64 LE, type u32 LE */
#define IDX_REC_REF_LEN    4     /* count u32 LE */
#define IDX_REC_ID_KEY_LEN 8     /* u64 BE */
#define IDX_REC_FRAG_KEY_LEN 16  /* ino u64 BE, byte offset u64 BE */
#define IDX_REC_NAME_KEY_MAX (8 + IDX_NAME_MAX)
#define IDX_REC_RAW_MAX    0x7fffffffu  /* a fragment's raw length (FRAG_MAX_RAW) */
#define IDX_REC_RECSIZE_MAX (1u << 24)  /* largest N of fixed:N */
#define IDX_REC_INODE_FLAGS 0x3fu       /* the INODE_F_* bits */
#define IDX_REC_FRAG_FLAGS  0x7u        /* the FRAG_F_* bits (0x2: format 3, 0x4: format 5) */
#define IDX_REC_SNAP_VER   1
#define IDX_REC_SNAP_HDR   48    /* §Snapshot record, then the name */
#define IDX_REC_SNAP_MAX   (IDX_REC_SNAP_HDR + IDX_NAME_MAX)

/* Integers in a fixed byte order at P. */
void idx_rec_put_be64(unsigned char *p, uint64_t v);
uint64_t idx_rec_get_be64(const unsigned char *p);
void idx_rec_put_le64(unsigned char *p, uint64_t v);
uint64_t idx_rec_get_le64(const unsigned char *p);
void idx_rec_put_le32(unsigned char *p, uint32_t v);
uint32_t idx_rec_get_le32(const unsigned char *p);

/* ---- keys ---- */

/* An 8-byte key (inodes, refs, inline, orphans): ID big-endian. */
void idx_rec_id_key(unsigned char kb[IDX_REC_ID_KEY_LEN], uint64_t id);
/* @return 0, or -EUCLEAN when LEN != 8 or the id is 0 (inode numbers and
 * fragment ids start at 1). */
int idx_rec_id_key_decode(const void *k, size_t len, uint64_t *id);

/* A frags key: INO then byte offset OFF, both big-endian. */
void idx_rec_frag_key(unsigned char kb[IDX_REC_FRAG_KEY_LEN], uint64_t ino, uint64_t off);
/* @return 0, or -EUCLEAN when LEN != 16 or INO is 0. */
int idx_rec_frag_key_decode(const void *k, size_t len, uint64_t *ino, uint64_t *off);

/* A dirents or xattrs key: ID big-endian then the bytes of NAME (no NUL).
 * @param[out] klen key length
 * @return 0; -ENAMETOOLONG when NAME is longer than IDX_NAME_MAX. */
int idx_rec_name_key(unsigned char kb[IDX_REC_NAME_KEY_MAX], uint64_t id, const char *name,
		     size_t *klen);
/* Split a name key of LEN bytes; NAME gets the name, NUL-terminated. The
 * index does not judge names (ns.c does): an empty one decodes.
 * @return 0; -EUCLEAN when the key is shorter than 8 bytes, the id is 0,
 * the name is longer than IDX_NAME_MAX or holds a NUL byte (it could not
 * be looked up again). */
int idx_rec_name_key_decode(const void *k, size_t len, uint64_t *id,
			    char name[IDX_NAME_MAX + 1]);

/* ---- values ---- */

/* The 120-byte inode record of IN (IN->ino is in the key, not here). */
void idx_rec_inode_encode(unsigned char p[IDX_REC_INODE_LEN], const struct idx_inode *in);
/* Decode an inode record of LEN bytes; OUT->ino = INO.
 * @return 0; -EUCLEAN when the length or record version is wrong, a
 * reserved byte is not zero, the file type is not one of the seven, a
 * flag is unknown, or the format is neither lines nor fixed:N with
 * 1 <= N <= IDX_REC_RECSIZE_MAX. */
int idx_rec_inode_decode(const void *p, size_t len, uint64_t ino, struct idx_inode *out);

/* The 48-byte fragment record of D (D->off is in the key). */
void idx_rec_frag_encode(unsigned char p[IDX_REC_FRAG_LEN], const struct frag_desc *d);
/* Decode a fragment record of LEN bytes at byte offset OFF (from the key).
 * @return 0; -EUCLEAN when the length is wrong, the reserved bytes are
 * not zero, a flag or the codec is unknown, the raw length is 0 or above
 * IDX_REC_RAW_MAX, the stored length does not fit the codec (raw: equal
 * to the raw length; lz4: 0 < stored < raw), or OFF + length or first
 * row + rows overflows 64 bits. */
int idx_rec_frag_decode(const void *p, size_t len, uint64_t off, struct frag_desc *out);

/* A dirent value: CHILD then TYPE (the S_IFMT bits). */
void idx_rec_dirent_encode(unsigned char p[IDX_REC_DIRENT_LEN], uint64_t child, uint32_t type);
/* @return 0, or -EUCLEAN when LEN != 12. TYPE may be NULL. The index
 * does not judge the values (ns.c writes them). */
int idx_rec_dirent_decode(const void *p, size_t len, uint64_t *child, uint32_t *type);

/* A refs value. */
void idx_rec_ref_encode(unsigned char p[IDX_REC_REF_LEN], uint32_t count);
/* @return 0; -EUCLEAN when LEN != 4 or the count is 0 (a record at 0 is
 * deleted, format.md). */
int idx_rec_ref_decode(const void *p, size_t len, uint32_t *count);

/* A meta u64 value (next_ino, next_frag). */
void idx_rec_u64_encode(unsigned char p[8], uint64_t v);
/* @return 0, or -EUCLEAN when LEN != 8. */
int idx_rec_u64_decode(const void *p, size_t len, uint64_t *v);

/* A snapshots value (the key is the snapshot's first inode, an id key):
 * the 48-byte header, then the name's bytes (no NUL).
 * @param[out] len the record's length (0 on failure)
 * @return 0; -EINVAL when S->name is empty, longer than IDX_NAME_MAX or
 * holds a '/' (nothing is written then). */
int idx_rec_snap_encode(unsigned char p[IDX_REC_SNAP_MAX], const struct idx_snap *s, size_t *len);
/* Decode a snapshots value of LEN bytes; OUT->first = FIRST (from the key).
 * @return 0; -EUCLEAN when the length or record version is wrong, a
 * reserved byte is not zero, the name's length is not 1..IDX_NAME_MAX or
 * not the rest of the record, the name holds a NUL or a '/', the count is
 * 0, or FIRST + count overflows 64 bits. */
int idx_rec_snap_decode(const void *p, size_t len, uint64_t first, struct idx_snap *out);

/* The meta "format" value, u32 LE. @return 0, or -EUCLEAN when LEN != 4. */
void idx_rec_format_encode(unsigned char p[4], uint32_t version);
int idx_rec_format_decode(const void *p, size_t len, uint32_t *version);

#endif
