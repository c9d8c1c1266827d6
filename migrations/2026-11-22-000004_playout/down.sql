DROP TABLE onair_log;
DROP TABLE diffusion_push;
DROP TABLE diffusion_sound;
DROP TABLE diffusion;
DROP TABLE track;
DROP TABLE sound;
DROP TABLE station;
