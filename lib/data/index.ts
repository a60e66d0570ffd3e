export { readExamples, readAll, inferFormat } from './read';
export type { ReadOptions, DataFormat } from './read';
export type { CsvOptions } from './read-csv';
export { TASK_FIELDS, FIELDS } from './example';
export type { Example, Source, QaAnswers, Field, Task, ColumnMap } from './example';
