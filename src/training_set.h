/*
 * training_set.h — the SQL functions of training sets (training_set.c): fs_point_in_time_join,
 * fs_training_columns, fs_create_training_set and its lineage. Other files call only the setup.
 */
#ifndef FS_TRAINING_SET_H
#define FS_TRAINING_SET_H

/* Installs the hint for a point-in-time join called without a column definition list (_PG_init). */
extern void fs_training_set_init(void);

#endif
