DROP TABLE item_rating;
