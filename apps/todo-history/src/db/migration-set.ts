import { defineMigrationSet } from 'postbox';

/** The app's own numbered migrations: the todo tables and the history table with its maintenance functions. */
export const todoHistoryMigrations = defineMigrationSet({
  name: 'todo-history',
  directory: new URL('./migrations/', import.meta.url),
  schema: 'todo_history',
  lockKey: 7_170_412_355_003,
  migrateCommand: 'npm run migrate --workspace todo-history',
});
