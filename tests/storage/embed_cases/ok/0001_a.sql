-- quotes ' " and \ and )" delimiters
SELECT 'x';
