-- Create "catalog_generations" table
CREATE TABLE `catalog_generations` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `generation` integer NOT NULL DEFAULT (0));
