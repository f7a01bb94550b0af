-- The provenance store lives beside Airflow's metadata, in its own database.
CREATE DATABASE synthchain;
