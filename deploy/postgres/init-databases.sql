-- Runs once, on an empty data volume: the databases Temporal needs beside kooflow's own.
CREATE DATABASE temporal;
CREATE DATABASE temporal_visibility;
